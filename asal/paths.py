"""Where the workflow keeps each file that more than one stage reads, by kind: the one list that the Snakemake
rules, the ``asal`` command's file arguments and the benchmarks read.

A strategy declares the kinds of file it reads (:class:`asal.strategies.StrategySpec`); :func:`run_inputs`
turns that declaration into the paths of one experiment. No torch here: the Snakefile imports it.
"""

from __future__ import annotations

#: File kind -> (path template, what it is). ``{exp}`` is the experiment, ``{space}`` a fixed feature space,
#: ``{index}`` the kind of nearest-neighbour index (``matching.index``).
FILES = {
    "pool": ("data/{exp}/pool.h5", "the pool store written by prepare-data"),
    "test": ("data/{exp}/test.h5", "the test store written by prepare-data"),
    "gan": ("models/{exp}/gan.pt", "gan.pt: the WGAN whose generator is searched for uncertain samples"),
    "autoencoder": ("models/{exp}/autoencoder.pt", "autoencoder.pt: the feature autoencoder"),
    "oracle": ("models/{exp}/oracle.pt", "oracle.pt: the classifier that annotates synthetic images"),
    "oracle_metrics": ("models/{exp}/oracle_metrics.json", "the oracle's metrics JSON (its test accuracy is recorded)"),
    "gan_samples": ("models/{exp}/gan_samples.png", "the GAN's sample grid (train-gan): what a person labelling an "
                    "unlabelled pool can judge the GAN by"),
    "gan_metrics": ("models/{exp}/gan_metrics.json", "the GAN's quality figures and verdict (evaluate-gan): a run "
                    "warns if the GAN failed its quality gate"),
    "codes": ("features/{exp}/latent.h5", "the invert-gan output: latent codes of the pool and test images"),
    "features_model": (None, "the model of a feature space: autoencoder.pt for auto, gan.pt (its critic) for disc"),
    "pca": ("features/{exp}/{space}_pca.h5", "the project-features output: a space's PCA and the projected pool"),
    "index": ("features/{exp}/{space}_{index}.index", "the build-index output on that PCA"),
}
#: The files a strategy may read (the others are every run's, or pre-processing's).
STRATEGY_FILES = ("gan", "gan_metrics", "features_model", "pca", "index", "oracle", "oracle_metrics", "codes")
#: Files a run reads for a warning in its log only: optional, and never a reason to rerun it.
ADVISORY_FILES = ("gan_metrics",)
#: Fixed feature space -> the file kind of the model that defines it (raw pixels need none).
FEATURE_MODELS = {"raw": None, "auto": "autoencoder", "disc": "gan"}
SPACES = tuple(FEATURE_MODELS)
#: Nearest-neighbour indexes (:mod:`asal.matching`), and ``auto``, which picks one by the pool's size.
INDEX_KINDS = ("kdtree", "flat", "ivf", "hnsw")
INDEX_CHOICES = (*INDEX_KINDS, "auto")
#: Extra outputs a strategy's run may write beside its rows and indices: kind -> (file name suffix, what).
#: In both, ``cycle`` is as the strategy records it: for GAAL's images the first cycle that trains on them, for
#: ADBA's lines the cycle that drew them (its model trains on them from the next).
RUN_OUTPUTS = {
    "synthetic": ("_synthetic.npz", "the annotated synthetic images, their labels and cycles (.npz)"),
    "lines": ("_lines.npz", "the annotated lines: codes, images, oracle and step labels (.npz)"),
}
RUN = "results/{exp}/runs/{strategy}/seed{seed}"


def flag(kind: str) -> str:
    """The ``asal`` command's argument for a file kind: ``oracle_metrics`` -> ``--oracle-metrics``."""
    return "--" + kind.replace("_", "-")


def path(kind: str, exp: str, *, space: str | None = None, index: str | None = None) -> str | None:
    """The workflow's path of one file of experiment ``exp``; None for the raw space's (absent) model."""
    if kind == "features_model":
        model = FEATURE_MODELS[space]
        return path(model, exp) if model else None
    return FILES[kind][0].format(exp=exp, space=space, index=index)


def run_inputs(spec, exp_name: str, exp: dict) -> dict[str, str]:
    """The files of one run of strategy ``spec`` in experiment ``exp_name`` (its validated config ``exp``):
    the pool and test stores, then each file kind the strategy declares."""
    inputs = {"pool": path("pool", exp_name), "test": path("test", exp_name)}
    for kind in spec.files:
        where = path(kind, exp_name, space=spec.space, index=exp["matching"]["index"])
        if where is not None:
            inputs[kind] = where
    return inputs


def run_outputs(spec, exp_name: str | None = None, seed: str | int | None = None) -> dict[str, str]:
    """A run's outputs: ``runs`` (rows), ``indices`` and the strategy's extra outputs; with no experiment and
    seed, as Snakemake wildcards."""
    base = RUN.format(exp="{exp}" if exp_name is None else exp_name, strategy="{strategy}" if exp_name is None
                      else spec.name, seed="{seed}" if seed is None else seed)
    return {"runs": f"{base}.csv", "indices": f"{base}_indices.csv",
            **{kind: base + RUN_OUTPUTS[kind][0] for kind in spec.outputs}}
