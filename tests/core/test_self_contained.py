"""The project speaks of itself alone: no file names a path outside the repository, and
every ``docs/…md#anchor`` the code cites is a heading of that document.

A clone of the repository is all a contributor has, so a docstring that says where its
facts come from must point inside it (``docs/exchanges.md#binance``), and that anchor
must exist. Real exchange replies under ``tests/fixtures/`` are copied verbatim with their
sources and are not checked.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXEMPT = ("tests/fixtures/",)

# Built from pieces so that this file does not name them itself.
_NOTES = "shared"
OUTSIDE = re.compile(
    "|".join([
        re.escape("../" + _NOTES),
        re.escape(_NOTES + "/") + "(?:exchanges|DESIGN|research)",
        # An absolute path on the machine the project was built on.
        r"(?<![\w./~-])/" + "work/",
        # The outside notes by name; none of them is a file of the repository.
        r"(?<![\w/-])(?:API|CCXT|DESIGN|ARCHIVES|WS|REVIEW|SCALEOUT)\.md\b",
    ])
)
# A citation of a document in docs/, with its anchor if any: in code docs/<name>.md#<anchor>,
# in the docs themselves also relative links ](<name>.md#<anchor>).
CITATION = re.compile(r"(?:\bdocs/|\]\()(?P<doc>[\w-]+\.md)(?:#(?P<anchor>[\w-]+))?")


def tracked_files() -> list[str]:
    """The repository's files: ``git ls-files`` in a clone, else a walk of the tree."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
    if not names:  # an unpacked source tree without git
        skip = {".git", ".venv", "build", "dist", "__pycache__", ".mypy_cache", ".ruff_cache",
                ".pytest_cache"}
        names = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                 if p.is_file() and not any(part in skip or part.endswith(".egg-info")
                                            for part in p.relative_to(ROOT).parts)]
    return [n for n in names if not n.startswith(EXEMPT)]


def texts() -> dict[str, str]:
    out = {}
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet in the index
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary
            continue
        out[name] = data.decode("utf-8", errors="replace")
    return out


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings: lower case, punctuation dropped,
    spaces made hyphens, a repeated slug suffixed ``-1``, ``-2``, ..."""
    seen: Counter[str] = Counter()
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m is None:
            continue
        text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1))
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return anchors


def test_no_file_names_a_path_outside_the_repository() -> None:
    found = [f"{name}:{n}: {line.strip()}"
             for name, text in texts().items()
             for n, line in enumerate(text.splitlines(), start=1)
             if OUTSIDE.search(line)]
    assert not found, "paths outside the repository:\n" + "\n".join(found)


def test_every_cited_docs_anchor_exists() -> None:
    files = texts()
    cited = 0
    broken = []
    for name, text in files.items():
        for n, line in enumerate(text.splitlines(), start=1):
            for m in CITATION.finditer(line):
                if m.group(0).startswith("](") and not name.startswith("docs/"):
                    continue  # a relative link elsewhere is not a docs/ citation
                doc = f"docs/{m.group('doc')}"
                cited += 1
                if doc not in files:
                    broken.append(f"{name}:{n}: {doc} does not exist")
                elif m.group("anchor") and m.group("anchor") not in github_anchors(files[doc]):
                    broken.append(f"{name}:{n}: {doc} has no heading #{m.group('anchor')}")
    assert not broken, "broken citations of docs/:\n" + "\n".join(broken)
    assert cited >= 20  # the adapters and venues cite their exchange's section


def test_github_anchors() -> None:
    doc = "# A title\n## binance\n```\n# not a heading\n```\n## How sure each fact is\n" \
          "## `code` and [a link](x.md)\n## binance\n"
    assert github_anchors(doc) == {"a-title", "binance", "how-sure-each-fact-is",
                                   "code-and-a-link", "binance-1"}
