"""Built-in exchange adapters, installed as ``dccd_cli.adapters`` and registered through the
``dccd.adapters`` entry-point group like any third-party adapter."""
