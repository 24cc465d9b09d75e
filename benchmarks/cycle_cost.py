"""What one AL cycle of a paper preset costs on this machine, stage by stage, and the whole preset extrapolated.

For datasets that are not on the machine (CIFAR-10, SVHN, CelebA, LSUN) the cost of a cycle does not depend
on what the pixels show: it is fixed by the image shape, the pool size, the classifier's training length
and the ASAL settings. So this times the preset's real code paths on a synthetic pool of the preset's shape
and size, with untrained networks of the preset's architectures:

- train: one classifier training with the preset's `classifier` settings on a labelled set of the run's
  middle size, (initial + budget) / 2 (Adam and SGD take a fixed number of steps whatever the size; LBFGS's
  full batch grows with it, so the middle size is the run's mean cycle);
- scan: class probabilities of the whole pool (what max-entropy, and every pool-scanning strategy, pays);
- ASAL per fixed matching space: the ascent (`asal.steps` Adam steps on `al.new` latent codes through the
  preset's generator), the synthetic batch's features and PCA projection, and the index search with matching.

Pre-processing (PCA fit, index build) is timed too but is paid once per experiment, not per cycle. Random
pixels make the PCA-projected pool spread evenly over all 50 dimensions, the k-d tree's worst case; real
images have a lower intrinsic dimension, so the search time is an upper bound. Everything after the table
(cycles x strategies x seeds) is an extrapolation and printed as one.

    python benchmarks/cycle_cost.py config/paper/cifar10.yaml --threads 2 --out cycle_cost_cifar10.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from sklearn.decomposition import PCA

from asal.config import validate_config
from asal.device import resolve_device, set_threads
from asal.images import to_float
from asal.matching import PCAProjection, make_index, match_without_replacement
from asal.models.autoencoder import ConvAutoencoder
from asal.models.classifiers import predict_proba, train_classifier
from asal.models.gan import ARCHS, Critic, Generator
from asal.settings import TrainConfig
from asal.strategies.adversarial import uncertainty_ascent

#: (channels, height, width) and pool size of each source's paper pool.
SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "svhn": (3, 32, 32), "celeba": (3, 64, 64),
          "lsun": (3, 64, 64)}


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def embed_fn(space: str, shape, exp: dict, device):
    """The preset's feature extractor for ``space`` (untrained weights: the cost is the architecture's)."""
    if space == "raw":
        return lambda x: x.flatten(1)
    if space == "auto":
        return ConvAutoencoder(shape, code_dim=exp["autoencoder"]["code_dim"]).to(device).eval().encode
    return Critic(shape, ARCHS[exp["gan"]["arch"]]).to(device).eval().features


@torch.no_grad()
def features(fn, images: np.ndarray, device, batch: int = 1024) -> np.ndarray:
    return np.concatenate([fn(to_float(images[i : i + batch], device)).float().cpu().numpy()
                           for i in range(0, len(images), batch)])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", help="a config/paper/*.yaml file that defines one experiment")
    parser.add_argument("--pool-size", type=int, help="default: the preset's pool size for its source")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--index", help="nearest-neighbour index to time instead of the preset's matching.index")
    parser.add_argument("--out", help="write the measurements as JSON here")
    args = parser.parse_args(argv)

    raw = yaml.safe_load(Path(args.preset).read_text())
    name, exp = next(iter(validate_config(raw, args.preset)["experiments"].items()))
    data, al, asal = exp["data"], exp["al"], exp["asal"]
    shape = SHAPES[data["source"]] if not data["image_size"] else (3, *data["image_size"])
    pool_size = args.pool_size or data["pool_size"] or {"cifar10": 50_000, "svhn": 604_388, "celeba": 162_770,
                                                        "lsun": 9_604_000, "mnist": 50_000}[data["source"]]
    n_classes = len(data["classes"] or range(10 if data["source"] != "celeba" else 2))
    set_threads(args.threads)
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (pool_size, *shape), dtype=np.uint8)
    labelled = rng.choice(pool_size, (al["initial"] + al["budget"]) // 2, replace=False)
    print(f"{name}: pool {pool_size} x {shape}, {n_classes} classes, device {device}, {args.threads} threads")

    cfg = TrainConfig.of(**exp["classifier"])
    model, t_train = timed(lambda: train_classifier(cfg, pool[labelled], rng.integers(0, n_classes, len(labelled)),
                                                   n_classes, seed=0, device=device))
    _, t_scan = timed(lambda: predict_proba(model, pool, device=device))
    generator = Generator(shape, exp["gan"]["latent_dim"], ARCHS[exp["gan"]["arch"]]).to(device)
    n_codes = asal["batch_size"] or al["new"]
    ascent, t_ascent = timed(lambda: uncertainty_ascent(generator, model, n_codes, steps=asal["steps"],
                                                        lr=asal["lr"], seed=0, device=device))
    result = {"experiment": name, "pool_size": pool_size, "index": args.index or exp["matching"]["index"], "image_shape": list(shape), "device": str(device),
              "threads": args.threads, "host": platform.node(), "train_s": t_train, "scan_s": t_scan,
              "ascent_s": t_ascent, "spaces": {}}
    for space in exp["matching"]["spaces"]:
        fn = embed_fn(space, shape, exp, device)
        feats, t_pool_feats = timed(lambda: features(fn, pool, device))
        fit_rows = rng.choice(pool_size, min(pool_size, exp["matching"]["pca_fit_samples"]), replace=False)
        pca, t_pca = timed(lambda: PCA(exp["matching"]["pca_dims"], random_state=0).fit(feats[fit_rows]))
        projection = PCAProjection(pca.mean_, pca.components_, pca.explained_variance_ratio_)
        index, t_index = timed(lambda: make_index(args.index or exp["matching"]["index"])
                               .build(projection.transform(feats)))
        queries, t_embed = timed(lambda: projection.transform(features(fn, (ascent.images.numpy() * 255)
                                                                       .round().astype(np.uint8), device)))
        _, t_search = timed(lambda: match_without_replacement(index, queries, al["new"], set(labelled.tolist()),
                                                              k=asal["k"]))
        result["spaces"][space] = {"embed_s": t_embed, "search_s": t_search, "once_pool_features_s": t_pool_feats,
                                   "once_pca_fit_s": t_pca, "once_index_build_s": t_index}
        del feats

    cycles = (al["budget"] - al["initial"]) // al["new"]
    print(f"\nmeasured, one cycle: train {t_train:.1f} s; pool scan {t_scan:.1f} s; ASAL ascent {t_ascent:.1f} s")
    for space, t in result["spaces"].items():
        print(f"  {space}: embed {t['embed_s']:.2f} s, search {t['search_s']:.2f} s "
              f"(once: pool features {t['once_pool_features_s']:.0f} s, PCA {t['once_pca_fit_s']:.0f} s, "
              f"index {t['once_index_build_s']:.0f} s)")
    per_cycle = {"random": t_train, "max-entropy": t_train + t_scan}
    for space, t in result["spaces"].items():
        per_cycle[f"asal-{space}"] = t_train + t_ascent + t["embed_s"] + t["search_s"]
    result["per_cycle_s"] = per_cycle
    result["extrapolated_run_h"] = {s: v * (cycles + 1) / 3600 for s, v in per_cycle.items()}
    print(f"\nEXTRAPOLATION from the one cycle above, x {cycles + 1} trainings per run "
          f"({len(exp['seeds'])} seeds):")
    for s, hours in result["extrapolated_run_h"].items():
        print(f"  {s:12s} {per_cycle[s]:8.1f} s/cycle  {hours:7.2f} h/run  {hours * len(exp['seeds']):7.2f} h all seeds")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
