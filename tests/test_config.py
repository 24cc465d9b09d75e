"""The schema: defaults, unknown keys, documentation of every key, and the shipped config files."""

import json
import re

import pytest
import yaml

from asal.config import load_config, load_schema, validate_config, validate_slice
from asal.errors import BadConfig
from asal.strategies import STRATEGIES, spec

from conftest import REPO


def walk_properties(schema, path="", defs=None):
    """Yield (dotted path, property schema) for every property the schema defines, following $refs."""
    defs = schema.get("$defs", {}) if defs is None else defs

    def resolve(node):
        return defs[node["$ref"].split("/")[-1]] if "$ref" in node else node

    for name, prop in schema.get("properties", {}).items():
        yield f"{path}{name}", prop
        yield from walk_properties(resolve(prop), f"{path}{name}.", defs)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from walk_properties(resolve(extra), f"{path}<name>.", defs)


#: Keys that only one source reads and that have no default, so that they never enter the data settings (and
#: the rerun triggers) of experiments on other sources; the schema requires them where they are needed.
SOURCE_KEYS_WITHOUT_DEFAULT = {"attribute", "extra", "test_source"}


def test_every_property_has_description_and_default():
    props = list(walk_properties(load_schema()))
    assert len(props) > 25
    for path, prop in props:
        assert prop.get("description"), path
        key = path.split(".")[-1]
        assert "default" in prop or path.endswith(".data") or key in SOURCE_KEYS_WITHOUT_DEFAULT, path


def test_config_readme_documents_every_key():
    readme = (REPO / "config" / "README.md").read_text()
    for path, _ in walk_properties(load_schema()):
        key = path.split(".")[-1]
        assert re.search(rf"`{re.escape(key)}`", readme), f"config/README.md does not document {path}"


def test_strategy_enum_is_the_registry():
    """The schema's list of names is the registry's (the schema file itself names none)."""
    enum = load_schema()["$defs"]["experiment"]["properties"]["strategies"]["items"]["enum"]
    assert enum == list(STRATEGIES) and "adba" in enum and "gaal" in enum


def test_defaults_are_filled_and_unknown_keys_rejected():
    config = validate_config({"experiments": {"x": {"data": {"classes": [1, 2]}}}})
    exp = config["experiments"]["x"]
    assert exp["al"] == {"initial": 100, "new": 100, "budget": 1000}
    assert exp["classifier"]["model"] == "cnn" and exp["data"]["source"] == "mnist"
    with pytest.raises(BadConfig, match=r"experiments.x.al.*'budgt' was unexpected"):
        validate_config({"experiments": {"x": {"data": {}, "al": {"budgt": 3}}}})


@pytest.mark.parametrize(
    "exp, match",
    [
        ({"data": {"source": "idx", "path": "a"}}, "labels_path"),
        ({"data": {}, "al": {"initial": 0}}, "experiments.x.al.initial"),
        ({"data": {}, "al": {"initial": 50, "budget": 10}}, "budget = 10 is smaller than al.initial = 50"),
        ({"data": {}, "strategies": ["asal-magic"]}, "experiments.x.strategies.0"),
        ({"data": {"classes": [3]}}, "experiments.x.data.classes"),
        ({"data": {}, "strategies": ["bald"]}, "'bald' samples the classifier's dropout, but classifier.dropout = 0"),
        ({"data": {}, "classifier": {"optimizer": "lbfgs", "dropout": 0.2}}, "lbfgs needs a deterministic loss"),
        ({"data": {"classes": [1, 2, 3]}, "strategies": ["adba"]}, "'adba' is for binary experiments"),
        ({"data": {}, "strategies": ["adba"]}, "'adba' is for binary experiments, but data.classes = null keeps all 10"),
        ({"data": {}, "strategies": ["asal-raw-margin"], "matching": {"spaces": ["auto"]}},
         "'asal-raw-margin' needs 'raw' in matching.spaces"),
    ],
)
def test_bad_values_name_the_key(exp, match):
    with pytest.raises(BadConfig, match=match):
        validate_config({"experiments": {"x": exp}})


def test_experiment_names_must_be_path_safe():
    with pytest.raises(BadConfig):
        validate_config({"experiments": {"../up": {"data": {}}}})


def test_slice_validation_fills_defaults():
    assert validate_slice({"model": "linear"}, "classifier")["steps"] == 500
    with pytest.raises(BadConfig, match=r"\[classifier\].*'depth' was unexpected"):
        validate_slice({"depth": 3}, "classifier")


def test_shipped_config_validates(tmp_path):
    config = load_config(REPO / "config" / "config.yaml")
    assert {"mnist2", "mnist10"} <= set(config["experiments"])
    mnist2 = config["experiments"]["mnist2"]
    assert mnist2["data"]["classes"] == [5, 7] and mnist2["classifier"]["model"] == "linear"
    assert config["experiments"]["mnist10"]["data"]["pool_size"] == 50000


def test_written_experiment_config_is_a_config_file_that_reloads_identically(tmp_path):
    """`asal write-config` (rule write_config): results/<exp>/config.yaml, defaults filled, loadable as is."""
    from asal.cli import main

    shipped = load_config(REPO / "config" / "config.yaml")
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["experiments"]["mnist2"]
    out = tmp_path / "config.yaml"
    assert main(["write-config", "--params", json.dumps(raw), "--experiment", "mnist2", "--out", str(out)]) == 0
    assert out.read_text().startswith("# The configuration that made results/mnist2/")
    assert load_config(out) == {"experiments": {"mnist2": shipped["experiments"]["mnist2"]}}


def test_write_config_rejects_a_bad_experiment_and_leaves_no_file(tmp_path, capsys):
    from asal.cli import main

    out = tmp_path / "config.yaml"
    bad = {"data": {"source": "npz", "path": "x.npz"}, "al": {"initial": 10, "new": 10, "budgett": 40}}
    assert main(["write-config", "--params", json.dumps(bad), "--experiment", "x", "--out", str(out)]) == 2
    assert "budgett" in capsys.readouterr().err and not out.exists()
    assert main(["write-config", "--params", "{", "--experiment", "x", "--out", str(out)]) == 2
    assert "not valid JSON" in capsys.readouterr().err and not out.exists()


def merged(*overlays):
    """config/config.yaml with ``overlays`` merged in order, as Snakemake merges ``--configfile`` files."""
    from snakemake.common.configfile import load_configfile
    from snakemake.utils import update_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for overlay in overlays:
        update_config(config, load_configfile(str(REPO / "config" / overlay)))
    return validate_config(config)["experiments"]


def test_all_strategies_overlay_validates_and_runs_every_applicable_strategy():
    """config/all-strategies.yaml merged into the default as Snakemake merges --configfile overlays."""
    exps = merged("all-strategies.yaml")
    binary_duplicates = {name for name in STRATEGIES if "margin" in name or "least-confidence" in name}
    needs_cnn = {name for name in STRATEGIES if "learning_loss" in spec(name).sections}
    assert needs_cnn == {"learning-loss", "asal-ll-raw", "asal-ll-auto", "asal-ll-disc"}
    assert set(exps["mnist2"]["strategies"]) == set(STRATEGIES) - {"bald"} - binary_duplicates - needs_cnn
    assert set(exps["mnist10"]["strategies"]) == set(STRATEGIES) - {"adba"}
    assert exps["mnist2"]["gan"] == load_config(REPO / "config" / "config.yaml")["experiments"]["mnist2"]["gan"]


def test_missing_and_broken_config_files(tmp_path):
    with pytest.raises(BadConfig, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("experiments: [")
    with pytest.raises(BadConfig, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "empty.yaml").write_text(yaml.safe_dump({}))
    with pytest.raises(BadConfig, match="'experiments' is a required property"):
        load_config(tmp_path / "empty.yaml")


# Table 1 of the paper, one row per preset: data set, classes, train size, classifier, GAN, feature matching,
# budget, new, initial, AL cycles, seeds. CelebA's row does not add up (see CELEBA_INITIAL).
TABLE_1 = {
    "mnist2": ("MNIST", 2, "10k", "linear", "WGAN-GP", ["raw", "disc", "auto"], 500, 10, 50, 45, 5),
    "cifar2": ("CIFAR-10", 2, "10k", "linear", "WGAN-GP", ["raw", "disc", "auto"], 1000, 10, 50, 95, 5),
    "mnist10": ("MNIST", 10, "50k", "cnn", "WGAN-GP", ["raw", "disc", "auto"], 10_000, 50, 100, 198, 5),
    "cifar10": ("CIFAR-10", 10, "50k", "cnn", "WGAN-CT", ["raw", "disc", "auto"], 30_000, 1000, 1000, 29, 3),
    **{f"celeba-{attr}": ("CelebA", 2, "160k", "cnn", "WGAN-GP", ["auto"], 2000, 10, 1000, 190, 5)
       for attr in ("blond_hair", "wearing_hat", "bangs", "eyeglasses")},
    "svhn": ("SVHN", 10, "604k", "cnn", "WGAN-GP", ["auto"], 50_000, 1000, 1000, 49, 3),
    "lsun": ("LSUN", 10, "9604k", "cnn", "WGAN-GP", ["auto"], 30_000, 1000, 1000, 29, 3),
}
#: The one recorded exception: (2000 - 1000) / 10 is 100 cycles, not the 190 listed, which fit 100 initial
#: (and Fig. 5's curves start below 750 labels). The presets take 100 initial and keep 190 cycles.
CELEBA_INITIAL = 100
#: What the train sizes mean on each source: the pool a preset keeps (pool_size null = all that the class
#: choice leaves; mnist10's 50000 is MNIST's whole 50k training split).
TRAIN_SIZE = {
    ("MNIST", "10k"): ("mnist", None), ("MNIST", "50k"): ("mnist", 50000), ("CIFAR-10", "10k"): ("cifar10", None),
    ("CIFAR-10", "50k"): ("cifar10", None), ("CelebA", "160k"): ("celeba", None), ("SVHN", "604k"): ("svhn", None),
    ("LSUN", "9604k"): ("lsun", None),
}
#: Strategies the paper's figure for each row compares (section 4.2: core-set on MNIST and SVHN; ASAL-CLS
#: on MNIST ten classes, CIFAR-10 ten classes and CelebA Eyeglasses; GAAL and ADBA on the binary sets).
PAPER_STRATEGIES = {
    "mnist2": {"asal-raw", "asal-auto", "asal-disc", "gaal", "adba"},
    "cifar2": {"asal-raw", "asal-auto", "asal-disc", "gaal"},
    "mnist10": {"asal-raw", "asal-auto", "asal-disc", "asal-cls", "coreset"},
    "cifar10": {"asal-raw", "asal-auto", "asal-disc", "asal-cls"},
    **{f"celeba-{attr}": {"asal-auto"} for attr in ("blond_hair", "wearing_hat", "bangs")},
    "celeba-eyeglasses": {"asal-auto", "asal-cls"},
    "svhn": {"asal-auto", "coreset"},
    "lsun": {"asal-auto"},
}


def test_every_table_1_row_has_a_preset():
    assert {p.stem for p in (REPO / "config" / "paper").glob("*.yaml")} - {"mnist10-cpu"} == set(TABLE_1)


@pytest.mark.parametrize("name", sorted(TABLE_1))
def test_paper_presets_follow_table_1(name):
    dataset, classes, size, model, gan, spaces, budget, new, initial, cycles, seeds = TABLE_1[name]
    exp = merged(f"paper/{name}.yaml")[name]
    al = exp["al"]
    if dataset == "CelebA":  # the table's inconsistency, recorded: its own initial does not give its cycles
        assert (al["budget"] - initial) / al["new"] != cycles
        initial = CELEBA_INITIAL
    assert (al["budget"], al["new"], al["initial"], len(exp["seeds"])) == (budget, new, initial, seeds)
    assert (al["budget"] - al["initial"]) / al["new"] == cycles
    source, pool_size = TRAIN_SIZE[dataset, size]
    assert (exp["data"]["source"], exp["data"]["pool_size"]) == (source, pool_size)
    native = {"mnist": 10, "cifar10": 10, "svhn": 10, "celeba": 2}  # classes a source has (lsun: named)
    assert (len(exp["data"]["classes"]) if exp["data"]["classes"] else native[source]) == classes
    assert exp["classifier"]["model"] == model and sorted(exp["matching"]["spaces"]) == sorted(spaces)
    assert exp["matching"]["pca_dims"] == 50 and exp["asal"]["steps"] == 100 and exp["asal"]["tolerance"] == 0
    assert (exp["gan"]["consistency"] > 0) == (gan == "WGAN-CT")
    assert {"random", "max-entropy", "full"} | PAPER_STRATEGIES[name] == set(exp["strategies"])


def test_paper_presets_change_no_preprocessing():
    """A preset reruns AL runs, never the GAN, autoencoder, features or indexes of the default config."""
    default = merged()
    for overlays in (["paper/mnist2.yaml"], ["paper/mnist10.yaml", "paper/mnist10-cpu.yaml"]):
        for name, exp in merged(*overlays).items():
            for key in ("data", "gan", "autoencoder", "matching", "oracle", "latent"):
                assert exp[key] == default[name][key], (overlays, name, key)


def test_the_cpu_cap_stops_mnist10_at_2000_labels():
    exp = merged("paper/mnist10.yaml", "paper/mnist10-cpu.yaml")["mnist10"]
    assert exp["al"]["budget"] == 2000 and (2000 - exp["al"]["initial"]) / exp["al"]["new"] == 38
    assert exp["strategies"] == merged("paper/mnist10.yaml")["mnist10"]["strategies"]


def test_the_registry_names_the_scores_that_asal_implements():
    from asal.scores import SCORES
    from asal.strategies import SCORE_NAMES

    assert tuple(SCORES) == SCORE_NAMES
