"""dccd's Python API, for notebooks and orchestrators: the command line is a thin layer
over it. Everything here is re-exported by ``dccd_cli`` itself (``dccd_cli.download``).

Blocking forms (``download``, ``sync``, ``markets``) work from plain scripts and inside a
running event loop (Jupyter); ``*_async`` forms are coroutines. Nothing is printed: the
library logs to ``logging.getLogger("dccd")``.
"""

from __future__ import annotations

import logging

from dccd_cli.api.download import download, download_async
from dccd_cli.api.info import ExchangeInfo, KindInfo, exchanges, inventory, markets, markets_async
from dccd_cli.api.paths import default_out
from dccd_cli.api.read import dataset, read
from dccd_cli.api.sync import Job, sync, sync_async

# A library's records are the application's to show: without logging configured, Python's
# last-resort handler would print dccd's warnings on stderr.
logging.getLogger("dccd").addHandler(logging.NullHandler())

__all__ = [
    "ExchangeInfo",
    "Job",
    "KindInfo",
    "dataset",
    "default_out",
    "download",
    "download_async",
    "exchanges",
    "inventory",
    "markets",
    "markets_async",
    "read",
    "sync",
    "sync_async",
]
