# Types of the compiled fast path of dccd_cli.colscan (dccd_cli/_colscan.c).
from collections.abc import Sequence
from typing import Any

def scan_into(body: bytes, spec: bytes, outs: Sequence[Any], /) -> int: ...
