"""The Snakemake profiles: profiles/gpu gives a GPU to exactly the rules that run torch, and Snakemake applies it."""

import re

import yaml

from asal.cli import build_parser
from asal.strategies import REGISTRY
from conftest import REPO, TINY, snakemake, tiny_workdir


def torch_subcommands() -> set[str]:
    """The `asal` sub-commands that take --device: the stages that run torch."""
    (subparsers,) = [action for action in build_parser()._actions if action.dest == "command"]
    return {name for name, parser in subparsers.choices.items()
            if any("--device" in action.option_strings for action in parser._actions)}


def rule_subcommands() -> dict[str, str]:
    """Rule name -> the `asal` sub-command its shell calls: the rules of rules/*.smk, and the AL run rules that
    rules/al.smk defines in a loop, one per set of extra outputs the registry declares (all call run-al)."""
    calls = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", smk.read_text(), re.M | re.S):
            calls[rule] = re.search(r'"asal ([a-z-]+)', body).group(1)
    assert '"asal run-al' in (REPO / "rules/al.smk").read_text()
    for outputs in {entry.outputs for entry in REGISTRY.values()}:
        calls["run_al" + "".join(f"_{kind}" for kind in outputs)] = "run-al"
    return calls


def test_the_gpu_profile_gives_a_gpu_to_exactly_the_torch_rules():
    profile = yaml.safe_load((REPO / "profiles/gpu/config.yaml").read_text())
    torch_rules = {rule for rule, command in rule_subcommands().items() if command in torch_subcommands()}
    assert {"train_gan", "run_al", "project_features"} <= torch_rules
    assert profile["set-resources"] == {rule: {"gpu": 1} for rule in torch_rules}


def test_snakemake_applies_the_gpu_profile(tmp_path):
    workdir = tiny_workdir(tmp_path / "wf", TINY)
    plan = snakemake(workdir, "-n", "--profile", str(REPO / "profiles/gpu")).stdout
    jobs = re.findall(r"^rule (\w+):\n(.*?)^\s+resources: (.*?)$", plan, re.M | re.S)
    gpu = {rule for rule, _, resources in jobs if "gpu=1" in resources}
    assert {"train_gan", "run_al", "project_features", "train_autoencoder"} <= gpu
    assert not gpu & {"prepare_data", "build_index", "summarize_runs", "plot_accuracy"}
