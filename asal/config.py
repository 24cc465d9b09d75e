"""Config: the JSON schema, default filling, and the per-stage slices that Snakemake rules pass as params.

The Snakefile validates the whole file with :func:`validate_config` when it loads, with the schema of
:func:`load_schema` (the file's, plus the registry's strategy names); the ``asal`` command validates again what
it receives, so a stage run by hand gets the same defaults and the same errors.
A slice is exactly the part of an experiment that changes a stage's output, which is what makes Snakemake's
params rerun trigger invalidate exactly the stages a config edit touches.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import BadConfig
from .paths import INDEX_CHOICES, SPACES

SCHEMA_PATH = Path(str(resources.files("asal") / "schema.yaml"))
#: Data sources whose pool comes without labels: a person labels it, so nothing can be simulated (no oracle,
#: no AL runs, no bound) and only pre-processing (GAN, autoencoder, features, indexes) is built.
UNLABELLED_SOURCES = ("unlabelled",)
#: The labelled sources an ``unlabelled`` experiment's test set (``data.test_source``) may be read with.
TEST_SOURCES = ("idx", "npz", "imagefolder")


def load_schema() -> dict:
    """The schema (a copy): the file's, with the strategy names of the registry (:mod:`asal.strategies`) as the
    strategies' enum (a registered strategy is admitted with nothing else edited), and the spaces and index
    kinds of :mod:`asal.paths`."""
    return copy.deepcopy(_schema())


@lru_cache(maxsize=1)
def _schema() -> dict:
    from .strategies import REGISTRY  # here: the registry loads other packages' strategies, which import this

    with open(SCHEMA_PATH) as fh:
        schema = yaml.safe_load(fh)
    schema["$defs"]["experiment"]["properties"]["strategies"]["items"]["enum"] = list(REGISTRY)
    matching = schema["$defs"]["matching"]["properties"]
    matching["spaces"]["items"]["enum"], matching["index"]["enum"] = list(SPACES), list(INDEX_CHOICES)
    return schema


def _validator_filling_defaults(schema: dict):
    """A validator that also writes each missing property's ``default`` (the jsonschema FAQ recipe)."""
    base = jsonschema.validators.validator_for(schema)
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, copy.deepcopy(prop["default"]))
        yield from validate_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def _validate(instance: Any, schema: dict, where: str) -> Any:
    instance = copy.deepcopy(instance)
    validator = _validator_filling_defaults(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise BadConfig(f"{where}: key {key!r}: {err.message}")
    return instance


def validate_config(config: dict, where: str = "config") -> dict:
    """Validate a whole config against the schema; return a copy with every default filled."""
    config = _validate(config, _schema(), where)
    for name, exp in config["experiments"].items():
        check_experiment(exp, f"{where}: experiments.{name}")
    return config


def check_experiment(exp: dict, where: str) -> None:
    """The constraints between keys of a validated experiment, and between its strategies and the rest."""
    from .strategies import spec

    check_sections(exp, exp["strategies"], where)
    for name in exp["strategies"]:
        space = spec(name).space
        if space is not None and space not in exp["matching"]["spaces"]:
            raise BadConfig(f"{where}.strategies: {name!r} needs {space!r} in matching.spaces "
                            f"(now {exp['matching']['spaces']})")
    check_data(exp["data"], f"{where}.data")
    if not has_labels(exp["data"]):
        cannot = [name for name in exp["strategies"] if needs_pool_labels(spec(name))]
        if cannot:
            raise BadConfig(f"{where}.strategies: {cannot} cannot run without labels, and data.source = "
                            f"{exp['data']['source']!r} has none (the oracle, and the bound `full`, train on every "
                            "pool label); remove them")
    classes = exp["data"]["classes"]
    n_classes = len(classes) if classes is not None else 10 if exp["data"]["source"] == "mnist" else None
    binary = [name for name in exp["strategies"] if spec(name).binary_only]
    if binary and n_classes not in (None, 2):
        raise BadConfig(f"{where}.strategies: {binary[0]!r} is for binary experiments, but data.classes "
                        f"{'has' if classes else '= null keeps all'} {n_classes} classes")


def has_labels(data: dict) -> bool:
    """Whether the pool of a data slice comes with labels, so that AL can be simulated on it (the oracle, the
    runs, the bound). False for :data:`UNLABELLED_SOURCES`, whose pool labels are all
    :data:`asal.data.store.UNLABELLED`. The workflow asks this to decide an experiment's targets."""
    return data["source"] not in UNLABELLED_SOURCES


def needs_pool_labels(strategy_spec) -> bool:
    """Whether a strategy (its :class:`~asal.strategies.StrategySpec`) reads the pool's labels without a
    person: through the oracle (trained on every pool label) or as the bound trained on all of them."""
    return bool({"oracle", "oracle_metrics"} & set(strategy_spec.files)) or strategy_spec.whole_pool


def check_data(data: dict, where: str = "data") -> None:
    """What the schema cannot say clearly about a validated data slice: for ``unlabelled``, ``classes`` names
    the classes a person chooses from (at least two unique strings), ``grow_to`` is unavailable, and an
    explicit test set is ``test_source`` with ``test_path`` (and ``test_labels_path`` for ``idx``) together."""
    if has_labels(data):
        return
    source, classes = data["source"], data["classes"]
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) and c for c in classes)
            and len(set(classes)) == len(classes)):
        raise BadConfig(f"{where}.classes = {classes!r}: source {source!r} needs the names of the classes a person "
                        "will choose from, at least two unique strings, e.g. [cat, dog]")
    if data["grow_to"] is not None:
        raise BadConfig(f"{where}.grow_to = {data['grow_to']}: not available for source {source!r}; an "
                        "augmented copy of an image no one has labelled adds nothing to label")
    test_source, test_path = data.get("test_source"), data["test_path"]
    if test_path is not None and test_source is None:
        raise BadConfig(f"{where}.test_path = {test_path!r} needs {where}.test_source, the labelled format it is "
                        f"in ({', '.join(TEST_SOURCES)}): the pool of source {source!r} has no labels to split off")
    if test_source is not None and test_path is None:
        raise BadConfig(f"{where}.test_source = {test_source!r} needs {where}.test_path, the test set's file or folder")
    if test_source == "idx" and not data["test_labels_path"]:
        raise BadConfig(f"{where}.test_labels_path is required with test_source 'idx' (the labels of {test_path!r})")


def check_sections(sections: dict, strategies: list[str], where: str) -> None:
    """What JSON schema cannot say between keys of the validated ``sections`` (those present are checked) for
    runs of ``strategies``: the one place of these rules, for a config file and for a run's ``--params``."""
    from .strategies import spec
    al, asal, classifier = sections.get("al"), sections.get("asal"), sections.get("classifier")
    if al and al["budget"] < al["initial"]:
        raise BadConfig(f"{where}: al.budget = {al['budget']} is smaller than al.initial = {al['initial']}")
    if al and asal and asal["batch_size"] is not None and asal["batch_size"] < al["new"]:
        raise BadConfig(f"{where}: asal.batch_size = {asal['batch_size']} is smaller than al.new = {al['new']}: "
                        "ASAL needs a synthetic sample per selected sample (null means al.new)")
    if not classifier:
        return
    if classifier["dropout"] > 0 and classifier["optimizer"] == "lbfgs":
        raise BadConfig(f"{where}: classifier.dropout = {classifier['dropout']}: lbfgs needs a deterministic "
                        "loss, and dropout makes it random; use adam or sgd, or dropout 0")
    for name in strategies:
        if spec(name).needs_dropout and classifier["dropout"] == 0:
            raise BadConfig(f"{where}: strategy {name!r} samples the classifier's dropout, but classifier.dropout "
                            f"= 0: set it above 0 (e.g. 0.25) or drop {name!r}")
        if "learning_loss" in spec(name).sections and (classifier["model"] != "cnn" or classifier["optimizer"] == "lbfgs"):
            raise BadConfig(f"{where}: strategy {name!r} predicts the loss from the classifier's intermediate feature "
                            f"maps, trained on its mini-batches, but classifier.model = {classifier['model']!r} with "
                            f"optimizer {classifier['optimizer']!r}: it needs model cnn with adam or sgd")


def write_experiment_config(name: str, exp: dict, out: str | Path) -> None:
    """Write one experiment's validated config, defaults filled, as a config file of its own.

    The file is what ``snakemake --configfile FILE`` reads, so the results it sits beside can be rerun from it.
    """
    from .files import atomic_path

    config = validate_config({"experiments": {name: exp}}, f"experiment {name!r}")
    header = f"# The configuration that made results/{name}/ (defaults filled), written by `asal write-config`.\n"
    with atomic_path(out) as tmp:
        tmp.write_text(header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None))


def load_config(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path) as fh:
            config = yaml.safe_load(fh)
    except FileNotFoundError:
        raise BadConfig(f"config file {str(path)!r} does not exist") from None
    except yaml.YAMLError as exc:
        raise BadConfig(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    return validate_config(config or {}, where=str(path))


def validate_slice(obj: dict, section: str, where: str = "--params") -> dict:
    """Validate one section (``data``, ``classifier``, ``al``) of an experiment; fill its defaults."""
    schema = _schema()
    # Validate the section's own body (a root `$ref` would skip the default-filling `properties` hook).
    body = dict(schema["$defs"][section], **{"$schema": schema["$schema"], "$defs": schema["$defs"]})
    return _validate(obj, body, f"{where} [{section}]")


def data_identity(data: dict) -> dict:
    """The data slice that decides a pool: without ``grow_to`` and ``augment`` while ``grow_to`` is null, and
    without ``class_names`` while it is null, so that pools made before those keys existed keep their
    identity and are not made again."""
    left_out = set() if data.get("grow_to") is not None else {"grow_to", "augment"}
    if data.get("class_names") is None:
        left_out.add("class_names")
    return {key: value for key, value in data.items() if key not in left_out}


def experiment(config: dict, name: str) -> dict:
    try:
        return config["experiments"][name]
    except KeyError:
        known = ", ".join(sorted(config["experiments"]))
        raise BadConfig(f"experiment {name!r} is not in the config (known: {known})") from None

