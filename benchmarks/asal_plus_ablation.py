"""ASAL against its baselines and against each change of `asal-plus`, one switch at a time (issue 10).

Runs `asal run-al` for every (variant, seed) on an experiment whose pre-processing the workflow has already
made (the stores in data/<exp>/, the GAN, the feature models, PCAs and indexes in models/ and features/),
then tabulates, per variant: test accuracy at the checkpoints, the mean over cycles after the first
selection, the share of the random -> max-entropy gap it closes, the entropy of the selected samples under
the classifier that chose them, the synthetic samples' entropy, the matching distance beside the pool's own
nearest-neighbour distance in the same space, and the selection seconds per cycle.

A variant is a strategy plus overrides of its `asal` and `asal_plus` sections, e.g. ``rerank=50`` or
``steps=0`` (ASAL without the ascent: random G(z), matched). Finished runs are kept and skipped, so a killed
ablation resumes where it stopped.

    python benchmarks/asal_plus_ablation.py --experiment mnist2 --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from asal.aggregate import checkpoints, markdown, read_runs
from asal.config import experiment, load_config
from asal.matching import make_index, read_projected
from asal.paths import flag, run_inputs
from asal.strategies import spec

#: name -> (strategy, overrides of the asal and asal_plus sections)
VARIANTS = {
    "random": ("random", {}),
    "max-entropy": ("max-entropy", {}),
    "asal-raw": ("asal-raw", {}),
    "asal-auto": ("asal-auto", {}),
    "asal-disc": ("asal-disc", {}),
    "asal-cls": ("asal-cls", {}),
    "asal-raw 100 steps": ("asal-raw", {"tolerance": 0.0}),
    "asal-auto 100 steps": ("asal-auto", {"tolerance": 0.0}),
    "asal-disc 100 steps": ("asal-disc", {"tolerance": 0.0}),
    "asal-cls 100 steps": ("asal-cls", {"tolerance": 0.0}),
    "asal-raw no ascent": ("asal-raw", {"steps": 0}),
    "raw rerank 5": ("asal-plus-raw", {"rerank": 5}),
    "raw rerank 10": ("asal-plus-raw", {"rerank": 10}),
    "raw rerank 20": ("asal-plus-raw", {"rerank": 20}),
    "raw rerank 50": ("asal-plus-raw", {"rerank": 50}),
    "raw sphere": ("asal-plus-raw", {"rerank": 0, "sphere": True}),
    "raw prior 0.05": ("asal-plus-raw", {"rerank": 0, "prior_weight": 0.05}),
    "raw diversity 1": ("asal-plus-raw", {"rerank": 0, "diversity": 1.0}),
    "raw rerank 50 + sphere": ("asal-plus-raw", {"rerank": 50, "sphere": True}),
    "raw rerank 50 + diversity 1": ("asal-plus-raw", {"rerank": 50, "diversity": 1.0}),
    "asal-plus-raw": ("asal-plus-raw", {}),
    "asal-plus-auto": ("asal-plus-auto", {}),
    "asal-plus-disc": ("asal-plus-disc", {}),
}
ASAL_KEYS = ("steps", "lr", "batch_size", "k", "tolerance", "patience")  # the rest of an override goes to asal_plus


def run_command(exp_name: str, exp: dict, variant: str, seed: int, out: Path) -> list[str]:
    """The `asal run-al` call of one (variant, seed), with the files the workflow made for ``exp_name`` (where
    the workflow keeps them: :func:`asal.paths.run_inputs` of the strategy's registry entry)."""
    strategy, overrides = VARIANTS[variant]
    settings = {**spec(strategy).config_slice(exp), "asal": dict(exp["asal"]), "asal_plus": dict(exp["asal_plus"])}
    for key, value in overrides.items():  # a switch of asal-plus may be tried on the paper's ASAL too
        settings["asal" if key in ASAL_KEYS else "asal_plus"][key] = value
    asal = shutil.which("asal") or str(Path(sys.executable).with_name("asal"))
    files = run_inputs(spec(strategy), exp_name, exp)
    return [asal, "run-al", "--params", json.dumps(settings), "--strategy", strategy, "--seed", str(seed),
            "--threads", "1", "--out", str(out), "--indices", str(out.with_name(out.stem + "_indices.csv")),
            *(arg for kind, path in files.items() for arg in (flag(kind), path))]


def pool_nn_distance(pca_path: str | Path, n: int = 2000, seed: int = 0) -> float:
    """Median distance from a pool sample to its nearest other pool sample in a projected space: the scale a
    matching distance should be read against."""
    points = read_projected(pca_path)
    rows = np.random.default_rng(seed).choice(len(points), min(n, len(points)), replace=False)
    dist, _ = make_index("flat").build(points).search(points[rows], 2)
    return float(np.median(dist[:, 1]))


def table(runs: pd.DataFrame, features: Path) -> pd.DataFrame:
    """One row per variant (the ``strategy`` column holds the variant's name), the columns of the module
    docstring; ``features`` is the experiment's folder of ``<space>_pca.h5`` files."""
    after = runs[runs.cycle > 0]  # cycle 0 is the shared initial set
    per_seed = after.groupby(["strategy", "seed"]).test_accuracy.mean().unstack()  # (variant, seed)
    mean = per_seed.mean(axis=1)
    gap = mean.get("max-entropy", np.nan) - mean.get("random", np.nan)
    at = checkpoints(runs.rename(columns={"test_accuracy": "accuracy_mean"}))
    acc = runs[runs.n_labelled.isin(at)].pivot_table(index="strategy", columns="n_labelled", values="test_accuracy")
    acc.columns = [f"acc@{n}" for n in acc.columns]
    out = pd.DataFrame({
        "seeds": per_seed.notna().sum(axis=1),
        "mean_acc": mean,
        "above_random_seeds": (per_seed.sub(per_seed.loc["random"], axis=1) > 0).sum(axis=1)
        if "random" in per_seed.index else np.nan,
        "gap_closed": (mean - mean.get("random", np.nan)) / gap,
    }).join(acc)
    diagnostics = ["selected_entropy", "synthetic_entropy", "match_distance", "select_seconds"]
    diag = runs.groupby("strategy")[diagnostics].mean()
    out = out.join(diag)
    spaces = {variant: spec(VARIANTS[variant][0]).space for variant in out.index}  # None: no fixed space
    nn = {space: pool_nn_distance(features / f"{space}_pca.h5") for space in set(spaces.values()) - {None}}
    out["pool_nn_distance"] = [nn.get(spaces[v], np.nan) for v in out.index]
    return out.sort_values("mean_acc", ascending=False)


def paired(runs: pd.DataFrame, suffix: str = " 100 steps") -> pd.DataFrame:
    """Each variant against its ``<variant><suffix>`` twin, seed by seed (the ascent's early stop against the
    paper's fixed 100 steps): accuracy at the last size and over the cycles after the first selection (points,
    variant minus twin), ascent steps and selection seconds per cycle of both."""
    rows = []
    for twin in sorted({v for v in runs.strategy.unique() if v.endswith(suffix)}):
        variant = twin[: -len(suffix)]
        both = runs[runs.strategy.isin([variant, twin]) & (runs.cycle > 0)]
        if variant not in both.strategy.values:
            continue
        last = both[both.n_labelled == both.n_labelled.max()].pivot_table(
            index="seed", columns="strategy", values="test_accuracy")
        mean = both.pivot_table(index="seed", columns="strategy", values="test_accuracy", aggfunc="mean")
        cost = both.groupby(["strategy", "seed"])[["ascent_steps", "select_seconds"]].mean().unstack(0)
        for seed in sorted(set(last.index) & set(mean.index)):
            rows.append({"variant": variant, "seed": seed,
                         "final_diff": 100 * (last.at[seed, variant] - last.at[seed, twin]),
                         "mean_diff": 100 * (mean.at[seed, variant] - mean.at[seed, twin]),
                         "steps": cost.at[seed, ("ascent_steps", variant)],
                         "steps_twin": cost.at[seed, ("ascent_steps", twin)],
                         "select_s": cost.at[seed, ("select_seconds", variant)],
                         "select_s_twin": cost.at[seed, ("select_seconds", twin)]})
    return pd.DataFrame(rows)


def plot(runs: pd.DataFrame, out_png: Path, title: str) -> None:
    """Test accuracy against labels, mean over seeds (left), and its difference from random's (right), where
    curves this close are told apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    mean = runs.groupby(["strategy", "n_labelled"]).test_accuracy.mean().unstack(0) * 100  # (sizes, variants)
    against_random = "random" in mean
    fig, axes = plt.subplots(1, 1 + against_random, figsize=(6 + 6 * against_random, 4.6), layout="constrained",
                             squeeze=False)
    left, right = axes[0, 0], axes[0, -1]
    colours = dict(zip(mean.columns, sns.color_palette("tab20" if mean.shape[1] > 10 else "colorblind", mean.shape[1])))
    for variant in mean.columns:
        style = dict(color=colours[variant], lw=2.2 if variant.startswith("asal-plus") else 1.3,
                     ls="--" if variant in ("random", "max-entropy") else "-")
        left.plot(mean.index, mean[variant], label=variant, **style)
        if against_random:
            right.plot(mean.index, mean[variant] - mean["random"], **style)
    left.set(xlabel="labelled samples", ylabel="test accuracy (%)", title=f"{title}: mean over seeds")
    if against_random:
        right.set(xlabel="labelled samples", ylabel="accuracy minus random's (points)", title="against random")
        right.axhline(0, color="grey", lw=0.8)
    left.legend(fontsize=7, ncol=2)
    fig.savefig(out_png, dpi=130)
    plt.close(fig)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each")
    parser.add_argument("--out", type=Path, help="default: results/ablation/<experiment>")
    args = parser.parse_args(argv)
    exp = experiment(load_config(args.config), args.experiment)
    out = args.out or Path("results/ablation") / args.experiment
    todo = [(v, s) for v in args.variants for s in args.seeds
            if not (out / "runs" / v.replace(" ", "_") / f"seed{s}.csv").exists()]
    started = time.perf_counter()

    def run(job):
        variant, seed = job
        csv = out / "runs" / variant.replace(" ", "_") / f"seed{seed}.csv"
        csv.parent.mkdir(parents=True, exist_ok=True)
        log = csv.with_suffix(".log")
        with open(log, "w") as fh:
            code = subprocess.call(run_command(args.experiment, exp, variant, seed, csv), stderr=fh)
        if code:
            raise RuntimeError(f"{variant} seed {seed} failed ({code}); see {log}")
        return job

    with ThreadPoolExecutor(args.jobs) as pool:
        for i, (variant, seed) in enumerate(pool.map(run, todo), 1):
            elapsed = time.perf_counter() - started
            print(f"[{i}/{len(todo)}] {variant} seed {seed} done; {elapsed:.0f} s, "
                  f"ETA {elapsed / i * (len(todo) - i):.0f} s", flush=True)

    frames = []
    for variant in args.variants:
        paths = [out / "runs" / variant.replace(" ", "_") / f"seed{s}.csv" for s in args.seeds]
        frames.append(read_runs(paths).assign(strategy=variant))
    runs = pd.concat(frames, ignore_index=True)
    result = table(runs, Path("features") / args.experiment)
    plot(runs, out / "ablation.png", args.experiment)
    result.to_csv(out / "ablation.csv", float_format="%.4f")
    (out / "ablation.md").write_text(markdown(result.rename_axis("variant"), ".4f") + "\n")
    pairs = paired(runs)
    if not pairs.empty:
        pairs.to_csv(out / "paired.csv", index=False, float_format="%.4f")
        print(pairs.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(result.to_string(float_format=lambda x: f"{x:.4f}"))
    return result


if __name__ == "__main__":
    main()
