"""Print where `make demo` put its data and what a dataset reader sees there."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.dataset as ds


def main(root: Path) -> None:
    print(f"\nDataset written under {root.resolve()}:")
    for path in sorted(root.rglob("*.parquet")):
        print(f"  {path.relative_to(root)}")
    for kind in ("ohlc", "trades"):
        if not (root / kind).exists():
            continue
        table = ds.dataset(root / kind, partitioning="hive").to_table()
        print(f"\n{kind}: {table.num_rows} rows, columns {', '.join(table.column_names)}")
        print(table.slice(0, 3).to_pandas().to_string() if _has_pandas() else table.slice(0, 3))


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-data"))
