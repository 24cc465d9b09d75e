"""How long a person waits between batches in `asal label` (issue 21): the time from the last answer of a
batch to the next batch being ready, at the mnist10 size (50k pool, the CNN), for each ``--strategies``.

A labelling session of each strategy runs on the workflow's files of the experiment (``make run`` or
``snakemake preprocess_mnist10`` first) and is answered through the JSON API (Flask's test client, in this
process) with the dataset's labels, instantly, batch after batch to the budget. For each batch after the
first: the wait, measured from the moment the last ``POST /api/label`` returns until the session publishes
the next batch (the benchmark waits on the session's condition variable, the one the loop notifies; a
browser polling every 0.7 s sees it up to that much later), and its split from the run's own row: training
(``train_seconds``), selection (``select_seconds``), pool I/O (``read_seconds``, where the pool is on disk)
and the rest (the test-set evaluation, the suggestions for the new batch, the checkpoint). Written to
``--out`` (one row per batch) and a Markdown table of medians beside it.

    python benchmarks/label_turnaround.py --config config/config.yaml --experiment mnist10 \\
        --strategies asal-raw max-entropy --out docs/labelling/turnaround.csv
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from asal.aggregate import markdown
from asal.device import resolve_device, set_threads
from asal.labelling import open_session
from asal.labelling.app import create_app

def wait_for(session, cycle: int, timeout: float = 600.0) -> None:
    """Wait on the session's condition until batch ``cycle`` is open or the session is done: woken the moment
    the loop publishes the batch, with no polling to compete with it for the interpreter."""
    def ready() -> bool:
        return session.status in ("done", "failed") or (session.status == "labelling" and session.batch.number == cycle)

    with session.lock:
        if not session.lock.wait_for(ready, timeout):
            raise SystemExit(f"batch {cycle} not ready within {timeout} s")
        if session.status == "failed":
            raise SystemExit(f"the session failed: {session.error}")


def run(config: str, experiment: str, strategy: str, seed: int, device, work: Path) -> pd.DataFrame:
    session = open_session(config, experiment, strategy=strategy, seed=seed, device=device, results=work)
    client = create_app(session).test_client()
    session.start()
    pool, waits, cycle = session.pool, [], 0
    wait_for(session, 0)
    while (state := client.get("/api/state").get_json())["status"] == "labelling":
        items = client.get("/api/batch").get_json()["items"]
        classes = state["classes"]
        for item in items:
            label = classes[int(pool.labels[item["pool_index"]])]
            response = client.post("/api/label", json={"pool_index": item["pool_index"], "label": label})
            if response.status_code != 200:
                raise SystemExit(f"answer refused: {response.get_json()}")
        answered = time.perf_counter()
        wait_for(session, cycle + 1)
        waits.append({"cycle": cycle, "wait_seconds": time.perf_counter() - answered})
        print(f"{strategy}: batch {cycle} answered; the next ready after {waits[-1]['wait_seconds']:.2f} s", flush=True)
        cycle += 1
    session.close()
    rows = pd.read_csv(work / f"seed{seed}.csv")
    # Batch c (answered) is trained on in cycle c's row and selected from in it: the row of the same number.
    frame = pd.DataFrame(waits).merge(rows[["cycle", "n_labelled", "train_seconds", "select_seconds", "read_seconds",
                                            "test_accuracy"]], on="cycle")
    frame = frame[frame["cycle"] < rows["cycle"].max()]  # the last cycle selects nothing: no next batch
    frame.insert(0, "strategy", strategy)
    frame["read_seconds"] = frame["read_seconds"].fillna(0.0)
    frame["other_seconds"] = frame["wait_seconds"] - frame["train_seconds"] - frame["select_seconds"]
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--experiment", default="mnist10")
    parser.add_argument("--strategies", nargs="+", default=["asal-raw", "max-entropy"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--out", default="docs/labelling/turnaround.csv")
    args = parser.parse_args()
    set_threads(args.threads)
    device = resolve_device("auto")
    frames = []
    for strategy in args.strategies:
        work = Path(tempfile.mkdtemp(prefix=f"label-{strategy}-"))
        try:
            frames.append(run(args.config, args.experiment, strategy, args.seed, device, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    frame = pd.concat(frames, ignore_index=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False, float_format="%.4f")
    columns = ["wait_seconds", "train_seconds", "select_seconds", "read_seconds", "other_seconds"]
    medians = frame.groupby("strategy", sort=False)[columns].median()
    medians.insert(0, "batches", frame.groupby("strategy", sort=False).size())
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {device}, threads {args.threads or 'all'}"
    table = markdown(medians, floatfmt=".2f")
    out.with_suffix(".md").write_text(f"Median seconds from the last answer of a batch to the next batch ({args.experiment}, "
                                      f"seed {args.seed}; {machine}):\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
