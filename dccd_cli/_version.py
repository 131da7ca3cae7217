"""dccd's version, from the installed distribution's metadata.

A module of its own so that nothing needs to import the package ``__init__`` for it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dccd")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
