"""Wall time, CPU time and peak memory of every workflow job, from Snakemake's benchmark files.

Every rule writes `benchmarks/<rule>/<wildcards>.tsv` (one row: seconds, max_rss in MB, cpu_time, ...). This
prints them as one table, per job and summed per rule, for the README and closing notes:

    python benchmarks/stage_times.py                # everything under benchmarks/
    python benchmarks/stage_times.py --exp mnist10  # one experiment's jobs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def read_benchmarks(root: Path, exp: str | None = None) -> pd.DataFrame:
    """One row per job: rule, job (the wildcards part of the file's path), seconds, cpu_seconds, max_rss_mb."""
    rows = []
    for path in sorted(root.glob("*/**/*.tsv")):
        job = path.relative_to(root / path.relative_to(root).parts[0]).with_suffix("").as_posix()
        if exp and not job.startswith(exp):
            continue
        frame = pd.read_csv(path, sep="\t")
        rows.append({"rule": path.relative_to(root).parts[0], "job": job, "seconds": frame["s"].iloc[-1],
                     "cpu_seconds": frame["cpu_time"].iloc[-1], "max_rss_mb": frame["max_rss"].iloc[-1]})
    return pd.DataFrame(rows, columns=["rule", "job", "seconds", "cpu_seconds", "max_rss_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("benchmarks"))
    parser.add_argument("--exp", help="only jobs whose wildcards start with this experiment name")
    args = parser.parse_args()
    jobs = read_benchmarks(args.root, args.exp)
    if jobs.empty:
        raise SystemExit(f"no benchmark files under {args.root} (run the workflow first)")
    pd.set_option("display.width", 200)
    print(jobs.to_string(index=False, float_format="%.1f"))
    per_rule = jobs.groupby("rule").agg(jobs=("job", "count"), seconds=("seconds", "sum"),
                                        cpu_seconds=("cpu_seconds", "sum"), max_rss_mb=("max_rss_mb", "max"))
    print("\nper rule (seconds summed over jobs; jobs may have run in parallel):")
    print(per_rule.sort_values("seconds", ascending=False).to_string(float_format="%.1f"))


if __name__ == "__main__":
    main()
