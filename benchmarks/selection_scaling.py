"""Selection time against pool size (the paper's Fig. 6 and Table 2): ASAL against max-entropy, 10k to 16M.

ASAL's claim is a selection cost that does not grow with the pool. This measures, on this machine, for each
pool size:

- ASAL selecting 10 samples, in parts: ``generation`` (100 Adam steps on 10 latent codes through a generator
  and the classifier), ``features`` (the synthetic images' raw-pixel features and PCA projection),
  ``search`` (one batched query of the 10 against the index) and ``matching`` (matching without replacement
  against a labelled set, its own search included), and ``total`` = generation + features + matching; one
  row per index (FAISS flat, IVF at several nprobe, HNSW, and the paper's k-d tree while it is affordable);
- max-entropy: ``scan`` (class probabilities of every pool image, in batches) and ``topk``, measured up to
  ``--max-scan`` images and fitted linearly beyond (those rows say ``extrapolated``);
- each index's ``build`` time and peak memory (the rise of the process's peak RSS during the build), and the
  recall@1 and recall@10 of the approximate ones against exact search on 1,000 held-out queries;
- ``pool/features``: what computing the pool's features and PCA projection costs (ASAL pays it once).

Large pools are made as the paper made them: the real MNIST pool (``--pool``, 50,000 images) augmented to
the size needed (random shifts of up to 2 pixels, horizontal flips, uniform noise of +-8 grey levels), each
augmented image put through the real raw-pixel feature extractor and the PCA fitted on the real pool (ASAL's
``raw`` space, 50 dimensions). Only the projections are kept (16M x 50 float32 = 3.2 GB); the 16M images
themselves (12.5 GB at 28x28) are never held, so max-entropy is measured on freshly augmented batches.

The networks have the experiments' architectures with untrained weights: a selection's cost is the
architecture's, not the weights'. Timings are medians of ``--repeats`` runs. The transition point (Fig. 6b)
divides ASAL's pre-processing (GAN and pool features, PCA, index) by what it saves per cycle.

    python benchmarks/selection_scaling.py --pool data/mnist10/pool.h5 --out results/bench/selection_scaling.csv
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from torch.utils.flop_counter import FlopCounterMode

from asal.data import read_split
from asal.data.augment import augment as augment_rows
from asal.device import set_threads
from asal.features import load_extractor
from asal.images import to_float
from asal.matching import PCAProjection, make_index, match_without_replacement
from asal.models.classifiers import build_classifier, predict_proba
from asal.models.gan import ARCHS, Generator
from asal.scores import entropy, from_logits
from asal.settings import TrainConfig
from asal.strategies.adversarial import frozen_for_ascent, uncertainty_ascent

RAW = load_extractor("raw", None, torch.device("cpu"))  # the `raw` space: pixels in [0, 1], flattened
COLUMNS = ["pool_size", "image_shape", "method", "part", "seconds", "peak_mb", "recall_at_1", "recall_at_10",
           "extrapolated", "networks", "note"]
#: name -> (image shape, generator architecture, latent dim): the generators ASAL's selection is timed with,
#: each beside the CNN classifier of that image shape.
NETWORKS = {
    "small-28x28": ((1, 28, 28), "small", 64),     # the project's mnist10 GAN
    "dcgan-28x28": ((1, 28, 28), "dcgan", 100),    # the paper-size generator at 28x28
    "dcgan-64x64x3": ((3, 64, 64), "dcgan", 100),  # the CelebA and LSUN presets' generator
}


def shape_name(shape: tuple[int, int, int]) -> str:
    c, h, w = shape
    return f"{h}x{w}" + (f"x{c}" if c > 1 else "")


def _status(key: str) -> float:
    """A line of /proc/self/status in MB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory(fn):
    """(fn(), seconds, MB): the rise of the process's peak RSS while ``fn`` runs (Linux: the peak is reset
    through /proc/self/clear_refs first)."""
    Path("/proc/self/clear_refs").write_text("5")
    base = _status("VmRSS")
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return out, seconds, max(0.0, _status("VmHWM") - base)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def augment(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` augmented copies of random ``images`` (M, H, W) uint8: shift by up to 2 px, flip, +-8 noise
    (the package's ``data.grow_to`` augmentation, :func:`asal.data.augment.augment`)."""
    src = images[rng.integers(0, len(images), n)]
    return augment_rows(src[:, None], rng, shift=2, flip=True, noise=8)[:, 0]


def raw_features(images: np.ndarray) -> np.ndarray:
    """ASAL's raw space through the package's own extractor: (n, H, W) uint8 -> (n, H*W) float32 in [0, 1]."""
    return RAW(to_float(images[:, None], RAW.device)).numpy()


def augmented_pool(images: np.ndarray, projection: PCAProjection, n: int, seed: int, cache: Path | None = None,
                   tag: str = "", chunk: int = 262_144) -> tuple[np.ndarray, float]:
    """(n, 50) float32 projections of an augmented pool, and the seconds spent on features + PCA alone.

    With ``cache``, both are kept in ``cache/pool_<tag>_<n>_seed<seed>.npy`` (+ ``.json``; ``tag`` names the
    real pool) and read back next time (3.2 GB at 16M: seconds to read, minutes to make).
    """
    path = cache / f"pool_{tag}_{n}_seed{seed}.npy" if cache else None
    if path is not None and path.exists() and path.with_suffix(".json").exists():
        print(f"  augmented pool of {n:,}: read from {path}")
        return np.load(path), json.loads(path.with_suffix(".json").read_text())["feature_seconds"]
    rng = np.random.default_rng(seed)
    out = np.empty((n, projection.components_.shape[0]), np.float32)
    feature_seconds = 0.0
    for start in range(0, n, chunk):
        batch = augment(images, min(chunk, n - start), rng)
        t0 = time.perf_counter()
        out[start : start + len(batch)] = projection.transform(raw_features(batch))
        feature_seconds += time.perf_counter() - t0
        print(f"\r  augmented pool: {start + len(batch):,} / {n:,}", end="", flush=True)
    print()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
        path.with_suffix(".json").write_text(json.dumps({"feature_seconds": feature_seconds}))
    return out, feature_seconds


def recall(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Fraction of the exact k nearest that ``found`` (n, >=k) contains, averaged over the queries."""
    return float(np.mean([len(set(f[:k]) & set(e[:k])) / k for f, e in zip(found, exact)]))


def matmul_gflops(repeats: int, n: int = 2048) -> float:
    """This machine's fp32 peak in practice: GFLOP/s of an n x n matrix product (median of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_time(lambda: a @ b, repeats) / 1e9


def ascent_gflop(generator: torch.nn.Module, classifier: torch.nn.Module, n_codes: int, steps: int) -> float:
    """The ascent's arithmetic in GFLOP: one step's forward and backward to z, counted by torch, times ``steps``
    (the forward passes before and after the loop left out). Divided by the machine's peak, a floor on its time."""
    generator, classifier = frozen_for_ascent(generator), frozen_for_ascent(classifier)
    z = torch.randn(n_codes, generator.latent_dim, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        (-from_logits("entropy", classifier(generator(z))).sum()).backward()
    return counter.get_total_flops() * steps / 1e9


def time_generation(key: str, threads: int, repeats: int, n_codes: int = 10) -> tuple[float, float, float]:
    """(ascent seconds, features + PCA seconds, ascent GFLOP) for ``n_codes`` synthetic images with ``key``'s
    networks."""
    shape, arch, latent = NETWORKS[key]
    torch.manual_seed(0)
    generator = Generator(shape, latent, ARCHS[arch]).eval()
    classifier = build_classifier(TrainConfig.of(model="cnn"), shape, 10).eval()
    ascent = lambda: uncertainty_ascent(generator, classifier, n_codes, steps=100, lr=0.02, seed=0,  # noqa: E731
                                        device=torch.device("cpu"))
    ascent()  # warm-up: first-call allocations
    t_gen = median_time(ascent, repeats)
    images = (ascent().images.numpy() * 255).round().astype(np.uint8)
    d = int(np.prod(shape))
    projection = PCAProjection(np.zeros(d, np.float32), np.random.default_rng(0).standard_normal((50, d)),
                               np.zeros(50))
    t_feat = median_time(lambda: projection.transform(images.reshape(n_codes, -1).astype(np.float32) / 255), repeats)
    return t_gen, t_feat, ascent_gflop(generator, classifier, n_codes, steps=100)


def scan_throughput(shape: tuple[int, int, int], images: np.ndarray | None, sizes: list[int],
                    seed: int) -> list[tuple[int, float, float]]:
    """(n, scan seconds, top-k seconds) of max-entropy's pool scan at each size in ``sizes``: class
    probabilities of every image in batches of 1,024 through the CNN, then the 10 of highest entropy.
    ``images`` (M, H, W) are augmented into the pool; None: random pixels of ``shape``."""
    torch.manual_seed(0)
    classifier = build_classifier(TrainConfig.of(model="cnn"), shape, 10).eval()
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        pool = (augment(images, n, rng)[:, None] if images is not None
                else rng.integers(0, 256, (n, *shape), dtype=np.uint8))
        predict_proba(classifier, pool[:1024], device=torch.device("cpu"))  # warm-up
        start = time.perf_counter()
        probs = predict_proba(classifier, pool, device=torch.device("cpu"))
        t_scan = time.perf_counter() - start
        start = time.perf_counter()
        np.argpartition(-entropy(probs), 10)[:10]
        rows.append((n, t_scan, time.perf_counter() - start))
        print(f"  max-entropy {shape_name(shape)}: {n:,} images in {t_scan:.1f} s ({n / t_scan:,.0f} images/s)")
        del pool, probs
    return rows


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import faiss

    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "faiss": faiss.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", default="data/mnist10/pool.h5", help="the real pool to augment (pool.h5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 4_000_000, 16_000_000])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64], help="IVF nprobe values to time")
    parser.add_argument("--ivf-quantizers", nargs="+", default=["hnsw", "flat"], choices=["hnsw", "flat"])
    parser.add_argument("--max-ivf-flat", type=int, default=4_000_000,
                        help="largest pool for IVF with the exact quantizer (its build is quadratic in the lists)")
    parser.add_argument("--max-kdtree", type=int, default=4_000_000, help="largest pool for the k-d tree")
    parser.add_argument("--max-hnsw", type=int, default=1_000_000, help="largest pool for HNSW (slow to build)")
    parser.add_argument("--max-scan", type=int, nargs=2, default=[200_000, 20_000], metavar=("N28", "N64"),
                        help="largest max-entropy scans measured at 28x28 and at 64x64x3; larger are fitted")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS),
                        help="the generators to time ASAL's generation with")
    parser.add_argument("--gan-seconds", type=float, default=9118.0,
                        help="the GAN's training time, for the transition point (mnist10 on 2 cores: 9,118 s)")
    parser.add_argument("--cache", type=Path, help="keep the augmented pools' projections here for the next run")
    parser.add_argument("--out", default="results/bench/selection_scaling.csv")
    args = parser.parse_args(argv)

    set_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    peak = matmul_gflops(args.repeats)
    info = {**machine(), "threads": args.threads, "matmul_gflops_fp32": round(peak, 1),
            "date": time.strftime("%Y-%m-%d %H:%M")}
    out.with_name(out.stem + "_machine.json").write_text(json.dumps(info, indent=2))
    print("machine:", json.dumps(info))
    rows: list[dict] = []

    def add(n, shape, method, part, seconds, **extra):
        rows.append({"pool_size": n, "image_shape": shape, "method": method, "part": part, "seconds": seconds,
                     "extrapolated": False, **extra})

    store = read_split(args.pool)
    real = store.images[:, 0]  # (50000, 28, 28) uint8
    pooled = shape_name(store.image_shape)  # "28x28": the pool's images, features and index
    pca = PCA(50, random_state=0).fit(raw_features(real))
    projection = PCAProjection(pca.mean_, pca.components_, pca.explained_variance_ratio_)
    largest = max(args.sizes)
    pool, feature_seconds = augmented_pool(real, projection, largest, seed=1, cache=args.cache,
                                           tag=store.config_hash[:12])
    held_out, _ = augmented_pool(real, projection, 1000, seed=2)  # recall queries, not in the pool
    rng = np.random.default_rng(3)

    # ASAL's parts that do not touch the pool: measured once per network, the same at every pool size
    generation = {key: time_generation(key, args.threads, args.repeats) for key in args.networks}
    arithmetic = {}  # key -> the generation rows' note: how near the machine's peak the ascent runs
    for key, (t_gen, t_feat, gflop) in generation.items():
        arithmetic[key] = (f"{gflop:.1f} GFLOP at {gflop / t_gen:.0f} GFLOP/s; at this machine's fp32 matmul "
                           f"peak of {peak:.0f} GFLOP/s it would take {gflop / peak:.2f} s")
        print(f"  generation {key}: 100 Adam steps on 10 codes {t_gen:.2f} s ({arithmetic[key]}), "
              f"features + PCA {t_feat * 1e3:.2f} ms")
    queries = held_out[:10]  # fresh augmentations: near the pool, as matched synthetic samples should be

    for n in sorted(args.sizes):
        x = pool[:n]
        add(n, pooled, "pool", "features", feature_seconds * n / largest,
            note=f"augment excluded; measured on {largest:,} and scaled to this prefix")
        labelled = set(rng.choice(n, min(n // 2, 1000), replace=False).tolist())
        kinds = [("flat", "flat", {})]
        kinds += [(f"ivf-{quantizer}", "ivf", {"ivf_quantizer": quantizer, "ivf_nprobe": p})
                  for quantizer in args.ivf_quantizers if quantizer == "hnsw" or n <= args.max_ivf_flat
                  for p in args.nprobe]
        kinds += [("hnsw", "hnsw", {"hnsw_m": 32, "hnsw_ef_search": 64})] if n <= args.max_hnsw else []
        kinds += [("kdtree", "kdtree", {})] if n <= args.max_kdtree else []
        built, exact_idx = {}, None
        for variant, kind, params in kinds:
            name = variant if kind != "ivf" else f"{variant}-nprobe{params['ivf_nprobe']}"
            if variant in built:  # one IVF build per quantizer, searched at each nprobe
                index = built[variant]
                index.index_.nprobe = params["ivf_nprobe"]
            else:
                index, seconds, peak = peak_memory(lambda: make_index(kind, **params).build(x))
                built[variant] = index
                add(n, pooled, f"index-{variant}", "build", seconds, peak_mb=peak,
                    note=f"nlist {index.index_.nlist}" if kind == "ivf" else "")
                print(f"  {n:,}: {variant} built in {seconds:.1f} s, peak +{peak:,.0f} MB")
            _, found = index.search(held_out, 10, allow_missing=True)
            exact_idx = found if kind == "flat" else exact_idx  # flat comes first: the exact answer
            r1, r10 = recall(found, exact_idx, 1), recall(found, exact_idx, 10)
            t_search = median_time(lambda: index.search(queries, 10, allow_missing=True), args.repeats)
            t_match = median_time(lambda: match_without_replacement(index, queries, 10, labelled, k=10), args.repeats)
            quality = {"recall_at_1": r1, "recall_at_10": r10}
            add(n, pooled, f"asal-{name}", "search", t_search, **quality)
            add(n, pooled, f"asal-{name}", "matching", t_match, **quality)
            for key, (t_gen, t_feat, _) in generation.items():
                shape, nets = shape_name(NETWORKS[key][0]), {"networks": key}
                add(n, shape, f"asal-{name}", "generation", t_gen, **nets, note=arithmetic[key])
                add(n, shape, f"asal-{name}", "features", t_feat, **nets)
                add(n, shape, f"asal-{name}", "total", t_gen + t_feat + t_match, **nets, **quality,
                    note="matching timed on the 28x28 pool's index (it depends on the 50 PCA dims, not the image)"
                    if shape != pooled else "")
            print(f"  {n:,}: {name} search {t_search * 1e3:.2f} ms, matching {t_match * 1e3:.2f} ms, "
                  f"recall@1 {r1:.3f}, @10 {r10:.3f}")
        del built

    # max-entropy: measured up to --max-scan, a straight line through the measurements beyond
    for shape, images, limit in ((store.image_shape, real, args.max_scan[0]), ((3, 64, 64), None, args.max_scan[1])):
        key, nets = shape_name(shape), {"networks": f"cnn-{shape_name(shape)}"}
        measured_sizes = sorted({n for n in args.sizes if n <= limit} | {limit // 4, limit})
        scans = scan_throughput(shape, images, measured_sizes, seed=4)
        sizes, t_scan, t_topk = (np.array(col, float) for col in zip(*scans))
        scan_fit, topk_fit = np.polyfit(sizes, t_scan, 1), np.polyfit(sizes, t_topk, 1)
        for n, ts, tk in scans:
            add(n, key, "max-entropy", "scan", ts, note=f"{n / ts:,.0f} images/s", **nets)
            add(n, key, "max-entropy", "topk", tk, **nets)
            add(n, key, "max-entropy", "total", ts + tk, **nets)
        for n in (n for n in args.sizes if n > limit):
            ts, tk = np.polyval(scan_fit, n), max(0.0, np.polyval(topk_fit, n))
            for part, seconds in (("scan", ts), ("topk", tk), ("total", ts + tk)):
                add(n, key, "max-entropy", part, seconds, note=f"linear fit through {len(scans)} sizes <= {limit:,}",
                    **nets)
                rows[-1]["extrapolated"] = True

    frame = pd.DataFrame(rows).reindex(columns=COLUMNS)
    frame = pd.concat([frame, transition_rows(frame, args.gan_seconds, pooled)], ignore_index=True)
    frame.to_csv(out, index=False, float_format="%.6g")
    plot(frame, out.with_suffix(".png"), out.with_name("selection_transition.png"))
    out.with_suffix(".md").write_text(summary_table(frame) + "\n")
    print(f"wrote {out} ({len(frame)} rows), its figures and its table")
    return frame


def summary_table(frame: pd.DataFrame) -> str:
    """The README's table: per pool size, the fastest index with recall@1 >= 0.95, its search and build, ASAL's
    whole selection with each network, max-entropy's, the speed-up and the transition point."""
    def row(n: int, method: str, part: str, **match) -> pd.Series:
        rows = frame[(frame.pool_size == n) & (frame.method == method) & (frame.part == part)]
        for key, value in match.items():
            rows = rows[rows[key] == value]
        return rows.iloc[0]

    networks = list(dict.fromkeys(frame.networks.dropna()[frame.networks.dropna().isin(NETWORKS)]))
    shapes = list(dict.fromkeys(frame[frame.method == "max-entropy"].image_shape))
    lines = ["| pool | fastest index with recall@1 >= 0.95 | search, 10 queries (ms) | recall@1 / @10 | build, peak "
             f"memory | ASAL selection of 10 (s): {' / '.join(networks)} | "
             + " | ".join(f"max-entropy {shape} (s)" for shape in shapes) + " | speed-up "
             + " / ".join(shapes) + " | transition (cycles) |", "|---" * (8 + len(shapes)) + "|"]
    for n in sorted(frame[frame.method == "index-flat"].pool_size.unique()):
        best = best_asal(frame, n)
        search = row(n, best.method, "search")
        build = row(n, "index-" + best.method.removeprefix("asal-").split("-nprobe")[0], "build")
        totals = {net: row(n, best.method, "total", networks=net).seconds for net in networks}
        maxent = {shape: row(n, "max-entropy", "total", image_shape=shape) for shape in shapes}
        speedup = [maxent[shape].seconds / totals[next(net for net in networks if net.endswith(shape))]
                   for shape in shapes if any(net.endswith(shape) for net in networks)]
        cells = [f"{n:,}", best.method.removeprefix("asal-"), f"{search.seconds * 1e3:.2f}",
                 f"{search.recall_at_1:.3f} / {search.recall_at_10:.3f}",
                 f"{build.seconds:.1f} s, {build.peak_mb:,.0f} MB", " / ".join(f"{t:.2f}" for t in totals.values())]
        cells += [f"{m.seconds:,.1f}" + (" (extrap.)" if m.extrapolated else "") for m in maxent.values()]
        cells += [" / ".join(f"{x:,.0f}x" for x in speedup), f"{row(n, 'transition', 'cycles').seconds:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_asal(frame: pd.DataFrame, n: int, networks: str | None = None) -> pd.Series:
    """The fastest ASAL total at pool size ``n`` among indexes with recall@1 >= 0.95 (exact ones have 1), with
    ``networks`` (default: small-28x28 where it was measured, else the first networks measured)."""
    measured = frame.networks.dropna().unique().tolist()
    networks = networks or ("small-28x28" if "small-28x28" in measured else measured[0])
    totals = frame[(frame.pool_size == n) & (frame.networks == networks) & (frame.part == "total")
                   & frame.method.str.startswith("asal-") & (frame.recall_at_1 >= 0.95)]
    return totals.loc[totals.seconds.idxmin()]


def transition_rows(frame: pd.DataFrame, gan_seconds: float, pooled: str = "28x28") -> pd.DataFrame:
    """Fig. 6b: cycles after which ASAL's pre-processing (GAN, pool features, the index) has paid for itself
    against max-entropy, for the pool's images, per pool size: pre-processing / (max-entropy's selection -
    ASAL's with the project's mnist10 networks)."""
    rows = []
    for n in sorted(frame[frame.method == "index-flat"].pool_size.unique()):  # the sizes ASAL was timed at
        asal = best_asal(frame, n)
        index_kind = asal.method.removeprefix("asal-").split("-nprobe")[0]
        maxent = frame[(frame.pool_size == n) & (frame.image_shape == pooled) & (frame.method == "max-entropy")
                       & (frame.part == "total")].iloc[0]
        build = frame[(frame.pool_size == n) & (frame.method == f"index-{index_kind}") & (frame.part == "build")]
        features = frame[(frame.pool_size == n) & (frame.method == "pool") & (frame.part == "features")]
        pre = gan_seconds + float(features.seconds.iloc[0]) + float(build.seconds.iloc[0])
        saved = float(maxent.seconds) - float(asal.seconds)
        rows.append({"pool_size": n, "image_shape": pooled, "method": "transition", "part": "cycles",
                     "seconds": pre / saved if saved > 0 else float("inf"), "extrapolated": bool(maxent.extrapolated),
                     "note": f"cycles (not seconds): pre-processing {pre:,.0f} s / {saved:.3f} s saved per cycle "
                             f"({asal.method} against max-entropy)"})
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def plot(frame: pd.DataFrame, times_png: Path, transition_png: Path) -> None:
    """Selection seconds against pool size (log-log; extrapolations dashed) and the transition point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    sizes = sorted(frame[frame.method == "index-flat"].pool_size.unique())  # the sizes ASAL was timed at
    fastest = {n: best_asal(frame, n).method for n in sizes}  # the index the small networks' total picks
    for networks, colour in (("small-28x28", "tab:blue"), ("dcgan-64x64x3", "tab:purple")):
        if not (frame.networks == networks).any():
            continue
        best = pd.DataFrame([best_asal(frame, n, networks) for n in sizes])
        ax.plot(best.pool_size, best.seconds, "o-", color=colour, label=f"ASAL total, {networks}")
    search = pd.DataFrame([frame[(frame.pool_size == n) & (frame.method == fastest[n]) & (frame.part == "search")]
                           .iloc[0] for n in sizes])
    ax.plot(search.pool_size, search.seconds, "s:", color="tab:green", label="ASAL search (10 queries)")
    for shape, colour in zip(dict.fromkeys(frame[frame.method == "max-entropy"].image_shape), ("tab:orange", "tab:red")):
        part = frame[(frame.method == "max-entropy") & (frame.part == "total") & (frame.image_shape == shape)]
        for extrapolated, style in ((False, "o-"), (True, "o--")):
            rows = part[part.extrapolated == extrapolated]
            if extrapolated and len(rows):
                rows = pd.concat([part[~part.extrapolated].tail(1), rows])
            ax.plot(rows.pool_size, rows.seconds, style, color=colour, mfc="none" if extrapolated else colour,
                    label=f"max-entropy {shape}" + (" (extrapolated)" if extrapolated else ""))
    ax.set(xscale="log", yscale="log", xlabel="pool size", ylabel="seconds to select 10 samples",
           title="Selection time against pool size (this machine)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(times_png, dpi=150)
    plt.close(fig)

    cycles = frame[frame.method == "transition"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    finite = cycles[np.isfinite(cycles.seconds)]
    ax.plot(finite.pool_size, finite.seconds, "o-", color="tab:blue")
    for row in finite.itertuples():
        ax.annotate(f"{row.seconds:,.0f}", (row.pool_size, row.seconds), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=8)
    never = cycles[~np.isfinite(cycles.seconds)].pool_size.tolist()
    if never:  # max-entropy selects faster there: ASAL never pays off
        ax.set_title(f"never at {', '.join(f'{n:,}' for n in never)}: max-entropy is faster", fontsize=9, loc="right")
    if len(finite):
        ax.set(xscale="log", yscale="log")
    ax.set(xlabel="pool size", ylabel="AL cycles until ASAL has paid off")
    fig.suptitle("Transition point: pre-processing / time saved per cycle")
    ax.grid(True, which="both", alpha=0.3)
    fig.savefig(transition_png, dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    main()
