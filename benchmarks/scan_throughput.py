"""How fast a pool scan (max-entropy and the other linear baselines) scores images, against the FLOP bound.

For the project's CNN at 28x28x1 (MNIST) and 64x64x3 (CelebA, LSUN), scores random uint8 images with
:func:`asal.models.classifiers.predict_proba` at several batch sizes and thread counts, and the same loop
under ``torch.no_grad`` instead of ``torch.inference_mode`` (what the scans used before issue 19). Beside
each rate: the CNN's forward FLOPs per image (torch's FlopCounterMode) and this machine's fp32 matmul peak
(a 2048^3 product), so the share of the hardware a scan reaches is read off the table.

    python benchmarks/scan_throughput.py --out results/bench/scan_throughput.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from asal.aggregate import markdown
from asal.images import to_float
from asal.models.classifiers import SmallCNN, predict_proba

SHAPES = {"28x28x1": (1, 28, 28), "64x64x3": (3, 64, 64)}


def matmul_peak(threads: int, n: int = 2048) -> float:
    """fp32 GFLOP/s of an n^3 matrix product with ``threads`` threads (the best of 3)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(3))
    return 2 * n**3 / best / 1e9


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def forward_flops(model: torch.nn.Module, shape) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    return counter.get_total_flops()


def scan_no_grad(model, images, batch_size: int) -> np.ndarray:
    """The scan as it was: autograd off with no_grad, batches of 1,024 by default."""
    with torch.no_grad():
        return np.concatenate([F.softmax(model(to_float(images[i : i + batch_size], torch.device("cpu"))), 1).numpy()
                               for i in range(0, len(images), batch_size)])


def measure(args) -> pd.DataFrame:
    rows = []
    for threads in args.threads:
        peak = matmul_peak(threads)
        for name, shape in SHAPES.items():
            torch.manual_seed(0)
            model = SmallCNN(shape, 10).eval()
            flops = forward_flops(model, shape)
            images = np.random.default_rng(0).integers(0, 256, (args.images, *shape), dtype=np.uint8)
            variants = [(f"inference_mode, batch {b}", lambda b=b: predict_proba(model, images, device=torch.device("cpu"),
                                                                              batch_size=b)) for b in args.batches]
            variants.append(("no_grad, batch 1024 (before)", lambda: scan_no_grad(model, images, 1024)))
            for label, fn in variants:
                fn()  # warm up
                best = min(_seconds(fn) for _ in range(args.repeats))
                rate = args.images / best
                rows.append({"shape": name, "threads": threads, "variant": label, "images_per_s": rate,
                             "gflop_per_image": flops / 1e9, "gflop_per_s": rate * flops / 1e9,
                             "matmul_peak_gflop_per_s": peak, "share_of_peak": rate * flops / 1e9 / peak})
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/bench/scan_throughput.csv"))
    args = parser.parse_args(argv)
    table = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.4g")
    args.out.with_suffix(".md").write_text(markdown(table.set_index("shape"), ".3g") + "\n")
    print(table.to_string())
    return table


if __name__ == "__main__":
    main()
