"""Do the nearest-neighbour indexes return what brute-force search returns, on real pool features?

For one experiment and feature space: test images go through the same feature extractor and PCA as the pool
(as synthetic samples do in ASAL), then every index kind is built on the projected pool and queried, and its
neighbours are compared with exact brute-force search in float64.

    python benchmarks/index_agreement.py --exp mnist10 --space raw [--queries 2000]

Reads data/{exp}/test.h5, features/{exp}/{space}_pca.h5 and the space's model; writes
results/bench/index_agreement_{exp}_{space}.csv and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asal.data import read_split
from asal import paths
from asal.features import load_extractor
from asal.matching import PCAProjection, make_index, read_projected
from asal.paths import INDEX_KINDS


def brute_force(points: np.ndarray, queries: np.ndarray, k: int, chunk: int = 500) -> np.ndarray:
    """Exact k nearest neighbours (n, k) int64 by float64 distances; ties to the lower index."""
    points64, sq = points.astype(np.float64), (points.astype(np.float64) ** 2).sum(1)
    out = []
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk].astype(np.float64)
        d2 = sq[None, :] - 2 * q @ points64.T + (q**2).sum(1)[:, None]
        part = np.argpartition(d2, k, axis=1)[:, : k + 5]  # a margin so ties at the k-th place sort stably
        order = np.lexsort((part, np.take_along_axis(d2, part, 1)), axis=1)
        out.append(np.take_along_axis(part, order, 1)[:, :k])
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exp", default="mnist10")
    parser.add_argument("--space", default="raw", choices=paths.SPACES)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    device = torch.device("cpu")
    extractor = load_extractor(args.space, paths.path("features_model", args.exp, space=args.space), device)
    test = read_split(paths.path("test", args.exp))
    images = torch.from_numpy(test.images[: args.queries]).float() / 255
    pca_path = paths.path("pca", args.exp, space=args.space)
    queries = PCAProjection.load(pca_path).transform(extractor(images).numpy())
    points = read_projected(pca_path)

    t0 = time.perf_counter()
    exact = brute_force(points, queries, args.k)
    brute_s = time.perf_counter() - t0
    rows = [{"index": "brute-force (numpy float64)", "build_s": 0.0, "query_s": brute_s}]
    for kind in INDEX_KINDS:
        t0 = time.perf_counter()
        index = make_index(kind).build(points)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, found = index.search(queries, args.k)
        query_s = time.perf_counter() - t0
        rows.append({
            "index": kind, "build_s": build_s, "query_s": query_s,
            "identical_lists": float((found == exact).all(axis=1).mean()),
            "recall_at_1": float((found[:, 0] == exact[:, 0]).mean()),
            "recall_at_10": float(np.mean([len(set(a) & set(b)) / args.k for a, b in zip(found, exact)])),
        })
    table = pd.DataFrame(rows).assign(exp=args.exp, space=args.space, pool=len(points), dims=points.shape[1],
                                      queries=len(queries))
    out = Path(f"results/bench/index_agreement_{args.exp}_{args.space}.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, float_format="%.6g")
    print(f"{args.exp} {args.space}: pool {len(points)} x {points.shape[1]} dims, {len(queries)} test-image queries, k={args.k}")
    print(table.drop(columns=["exp", "space", "pool", "dims", "queries"]).to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
