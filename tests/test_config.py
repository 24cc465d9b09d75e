"""The schema: defaults, unknown keys, documentation of every key, and the shipped config files."""

import re

import pytest
import yaml

from asal.config import load_config, load_schema, validate_config, validate_slice
from asal.errors import BadConfig
from asal.strategies import STRATEGIES

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
SOURCE_KEYS_WITHOUT_DEFAULT = {"attribute", "extra"}


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


def test_strategy_enum_matches_registry():
    """The schema's list of names is the registry's, plus ADBA (its own loop, outside the registry)."""
    enum = load_schema()["$defs"]["experiment"]["properties"]["strategies"]["items"]["enum"]
    assert sorted(enum) == sorted([*STRATEGIES, "adba"])


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
    assert set(exps["mnist2"]["strategies"]) == set(STRATEGIES) - {"bald"} - binary_duplicates | {"adba"}
    assert set(exps["mnist10"]["strategies"]) == set(STRATEGIES)
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


# Table 1 of the paper: classes, train size, classifier, feature matching, budget, new, initial, cycles, seeds.
TABLE_1 = {
    "mnist2": (2, "10k", "linear", ["raw", "disc", "auto"], 500, 10, 50, 45, 5),
    "mnist10": (10, "50k", "cnn", ["raw", "disc", "auto"], 10_000, 50, 100, 198, 5),
}


@pytest.mark.parametrize("name", sorted(TABLE_1))
def test_paper_presets_follow_table_1(name):
    classes, size, model, spaces, budget, new, initial, cycles, seeds = TABLE_1[name]
    exp = merged(f"paper/{name}.yaml")[name]
    al = exp["al"]
    assert (al["budget"], al["new"], al["initial"], len(exp["seeds"])) == (budget, new, initial, seeds)
    assert (al["budget"] - al["initial"]) / al["new"] == cycles
    assert len(exp["data"]["classes"] or range(10)) == classes
    # "10k" is all 9,681 5s and 7s of the 50k training split; "50k" is that whole split.
    assert exp["data"]["pool_size"] == {"10k": None, "50k": 50000}[size]
    assert exp["classifier"]["model"] == model and sorted(exp["matching"]["spaces"]) == sorted(spaces)
    assert exp["matching"]["pca_dims"] == 50 and exp["asal"]["steps"] == 100
    assert exp["gan"]["consistency"] == 0.0  # WGAN-GP; only CIFAR-10 ten classes adds the consistency term
    paper = {"random", "max-entropy", "full", "asal-raw", "asal-auto", "asal-disc"}
    assert paper | ({"gaal", "adba"} if name == "mnist2" else {"coreset", "asal-cls"}) == set(exp["strategies"])


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
