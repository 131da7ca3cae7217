# Types of the compiled fast path of dccd_cli.exchange.pagescan (dccd_cli/_pagescan.c).
from collections.abc import Sequence
from typing import Any

def scan_into(body: bytes, spec: bytes, outs: Sequence[Any], /) -> int: ...
