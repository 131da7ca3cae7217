"""`dccd sync --example`: a commented job file for users who installed dccd without the
repository, loaded by the real config loader and kept equal to the repository's configs."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from dccd_testing import run_cli

from dccd_cli.run.jobfile import JobSpec, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def spec(job: JobSpec) -> dict[str, object]:
    """What a job asks for, without where it was written."""
    doc = dataclasses.asdict(job)
    for where in ("index", "source", "lines", "symbol_lines", "out"):
        doc.pop(where)
    return doc


def test_the_example_is_a_valid_job_file_with_the_repositorys_jobs(tmp_path: Path) -> None:
    r = run_cli("sync", "--example")
    assert r.code == 0 and r.stderr == "", r.stderr
    text = r.stdout
    assert text.startswith("# A dccd sync job file") and "dccd sync --example > sync.toml" in text
    repo_jobs = {j.name: spec(j) for f in sorted(CONFIGS.glob("*.toml")) for j in load_config(f).jobs}

    example = tmp_path / "sync.toml"
    example.write_text(text)
    jobs = load_config(example).jobs
    assert [j.name for j in jobs] == ["binance-candles", "coinbase-candles"]
    for job in jobs:
        assert spec(job) == repo_jobs[job.name]

    # The commented-out jobs are valid too once uncommented, and the repository's as well
    # (but for what the example's [defaults] fill in).
    head, _, tail = text.partition("\n# [[job]]")
    uncommented = head + "\n" + "\n".join(
        line[2:] if re.match(r"# (\[\[job\]\]|[a-z_]+ = )", line) else line
        for line in ("# [[job]]" + tail).splitlines()
    )
    example.write_text(uncommented)
    jobs = load_config(example).jobs
    assert [j.name for j in jobs][2:] == ["binance-trades", "usdt-daily"]
    for job in jobs[2:]:
        want, got = repo_jobs[job.name], spec(job)
        assert {k: v for k, v in got.items() if k != "overlap"} == \
            {k: v for k, v in want.items() if k != "overlap"}
