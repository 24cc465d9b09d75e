"""Peak memory of one ASAL run against the pool's size: what grows (the index) and what does not (issue 20).

For each size N, the first N rows of a large pool store (``make scale``'s 16M-image pool by default) become a
pool of their own, with its raw-pixel PCA (``project_pool``) and an ``auto`` index (``build_index``); the
largest size uses the workflow's own files. Then ``asal run-al`` runs ``--strategy`` for ``--cycles``
selections under ``/usr/bin/time -v``, in a process of its own, with the GAN of the large pool and the pool
read from disk at every size (``--pool-in-memory no``), so only what the method needs can grow. Written to
``--out``: one row per size with the peak resident memory, the files' sizes and the median seconds of a
selection (and its split), the rows it read from disk and the read seconds; a Markdown table beside it; and
a figure of peak memory and index size against N.

    python benchmarks/pool_memory.py --work results/bench/pool_memory --out docs/scale/pool_memory.csv

Needs ``make scale`` first (its pool, GAN, PCA and index), and per size below 16M the disk of its prefix
(784 bytes an image) and its projection (200 bytes an image).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from asal.features import load_extractor, project_pool  # noqa: E402
from asal.files import config_hash  # noqa: E402
from asal.matching import build_index  # noqa: E402

import torch  # noqa: E402

EXP = "mnist16m"
CLASSIFIER = {"model": "cnn", "optimizer": "adam", "lr": 0.001, "steps": 300, "batch_size": 64}  # mnist10's


def prefix_pool(src: Path, out: Path, n: int, chunk: int = 1 << 16) -> None:
    """The first ``n`` rows of the pool store ``src`` as a store of their own (uncompressed, as grown pools)."""
    if out.exists():
        return
    tmp = out.with_suffix(".tmp.h5")
    with h5py.File(src, "r") as s, h5py.File(tmp, "w") as d:
        images = d.create_dataset("images", shape=(n, *s["images"].shape[1:]), dtype="uint8",
                                  chunks=s["images"].chunks)
        for start in range(0, n, chunk):
            images[start : min(n, start + chunk)] = s["images"][start : min(n, start + chunk)]
        d["labels"], d["orig_index"] = s["labels"][:n], s["orig_index"][:n]
        d.attrs.update(s.attrs)
        d.attrs["config_hash"] = config_hash({"prefix_of": str(s.attrs["config_hash"]), "rows": n})
    tmp.rename(out)


def run_al(pool: Path, test: Path, gan: Path, pca: Path, index: Path, strategy: str, cycles: int, work: Path,
           threads: int) -> dict:
    """One ``asal run-al`` under ``/usr/bin/time -v``: its peak RSS (GB) and its per-cycle rows."""
    params = {"classifier": CLASSIFIER, "al": {"initial": 100, "new": 100, "budget": 100 + 100 * cycles}}
    out = work / f"{strategy}.csv"
    for stale in (out, out.with_name(out.stem + ".checkpoint.json")):
        stale.unlink(missing_ok=True)
    files = ["--gan", str(gan), "--pca", str(pca), "--index", str(index)] if strategy.startswith("asal") else []
    asal = str(Path(sys.executable).with_name("asal"))  # the command of this interpreter's environment
    cmd = ["/usr/bin/time", "-v", asal, "run-al", "--params", json.dumps(params), "--pool", str(pool),
           "--test", str(test), "--strategy", strategy, "--seed", "0", *files, "--threads", str(threads),
           "--pool-in-memory", "no",
           "--out", str(out), "--indices", str(work / f"{strategy}_indices.csv")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {"max_rss_gb": rss_kb / 1e6, "rows": pd.read_csv(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=Path, default=Path(f"data/{EXP}/pool.h5"))
    ap.add_argument("--test", type=Path, default=Path(f"data/{EXP}/test.h5"))
    ap.add_argument("--gan", type=Path, default=Path(f"models/{EXP}/gan.pt"))
    ap.add_argument("--pca", type=Path, default=Path(f"features/{EXP}/raw_pca.h5"), help="the largest size's")
    ap.add_argument("--index", type=Path, default=Path(f"features/{EXP}/raw_auto.index"), help="the largest size's")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 4_000_000, 16_000_000])
    ap.add_argument("--strategy", default="asal-raw")
    ap.add_argument("--cycles", type=int, default=3, help="selections per run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("results/bench/pool_memory"))
    ap.add_argument("--keep", action="store_true", help="keep the prefix pools and their files")
    ap.add_argument("--out", type=Path, default=Path("results/bench/pool_memory.csv"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with h5py.File(args.pool, "r") as fh:
        full = len(fh["labels"])
    results = []
    for n in sorted(args.sizes):
        work = args.work / str(n)
        work.mkdir(parents=True, exist_ok=True)
        made = []
        if n == full:
            pool, pca, index = args.pool, args.pca, args.index
            prepare_s = float("nan")
        else:
            pool, pca, index = work / "pool.h5", work / "raw_pca.h5", work / "raw_auto.index"
            t0 = time.perf_counter()
            prefix_pool(args.pool, pool, n)
            if not pca.exists():
                project_pool(load_extractor("raw", None, torch.device("cpu")), pool, pca, dims=50)
            if not index.exists():
                build_index("auto", pca, index, ivf_nprobe=8, seed=0)
            prepare_s, made = time.perf_counter() - t0, [pool, pca, index]
        run = run_al(pool, args.test, args.gan, pca, index, args.strategy, args.cycles, work, args.threads)
        rows = run["rows"].dropna(subset=["select_seconds"])
        results.append({
            "pool_size": n, "strategy": args.strategy, "max_rss_gb": run["max_rss_gb"],
            "index_gb": os.path.getsize(index) / 1e9, "pca_file_gb": os.path.getsize(pca) / 1e9,
            "pool_file_gb": os.path.getsize(pool) / 1e9, "select_s": rows.select_seconds.median(),
            "generate_s": rows.generate_seconds.median(), "project_s": rows.features_seconds.median(),
            "search_match_s": rows.search_seconds.median(), "train_s": rows.train_seconds.median(),
            "pool_rows_read": rows.pool_rows_read.median(), "read_s": rows.read_seconds.median(),
            "prepare_s": prepare_s,
        })
        print(json.dumps(results[-1]), flush=True)
        if not args.keep:
            for path in made:
                path.unlink(missing_ok=True)
    frame = pd.DataFrame(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    args.out.with_suffix(".md").write_text(frame.to_markdown(index=False, floatfmt=".3g") + "\n")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(frame.pool_size, frame.max_rss_gb, "o-", label=f"peak memory of one {args.strategy} run")
    ax.plot(frame.pool_size, frame.index_gb, "s--", label="its index file")
    ax.plot(frame.pool_size, frame.max_rss_gb - frame.index_gb, "^:", label="peak memory less the index")
    ax.set(xscale="log", xlabel="pool size (images)", ylabel="GB", title="Memory of an ASAL run against the pool")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    for suffix in (".png", ".pdf"):
        fig.savefig(args.out.with_suffix(suffix), dpi=150)


if __name__ == "__main__":
    main()
