"""Where a dataset is when the caller names none: one rule for the API and the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

from dccd_cli.run.request import local_dir


def default_out() -> Path:
    """The default dataset directory: ``$DCCD_DATA_DIR``, else the platform's user data
    directory for dccd (``~/.local/share/dccd`` on Linux)."""
    env = os.environ.get("DCCD_DATA_DIR")
    return local_dir(env, what="DCCD_DATA_DIR") if env else Path(user_data_dir("dccd"))


def out_path(out: str | os.PathLike[str] | None, what: str = "--out") -> Path:
    """A dataset directory as given: text as typed (a URL is refused, an ``OutputPathError``
    naming ``what``), a path as it is, or None for ``default_out()``."""
    if out is None:
        return default_out()
    if isinstance(out, str):
        return local_dir(out, what=what)
    return Path(out).expanduser()
