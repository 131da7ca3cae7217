"""dccd's cache directory: market lists (``dccd_cli.exchange.markets``) and remembered bans
(``dccd_cli.net.bans``). Its own module because both need it and the network layer imports
the bans: nothing here imports the rest of dccd."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_root() -> Path:
    """``$DCCD_CACHE_DIR``, else the platformdirs user cache directory of dccd."""
    return Path(os.environ.get("DCCD_CACHE_DIR") or user_cache_dir("dccd"))
