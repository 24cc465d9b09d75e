"""Selection strategies: what each needs, declared once, and the registry that names them.

A :class:`StrategySpec` says everything the rest of the project needs to know about a strategy without
importing it (so no torch): the files it reads, by kind (:data:`asal.paths.FILES`), and for ASAL the fixed
feature space they belong to; the config sections its runs depend on (so Snakemake reruns exactly its runs
when one changes); the extra outputs its runs write; and its constraints (two classes only; a classifier
with dropout). The schema's strategy list, the workflow's inputs, params and outputs, the ``asal`` command's
file arguments, the loaders' checks of missing and unused files and the benchmarks all derive from it.

Adding a strategy: one module with a :class:`asal.strategies.base.Strategy` subclass whose ``load``
builds it, and one :func:`register` call below (from outside the package, an entry point in the group
``asal.strategies`` that names a :class:`StrategySpec`). The contract tests cover every registered name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from ..errors import BadConfig
from ..paths import ADVISORY_FILES, FEATURE_MODELS, RUN_OUTPUTS, SPACES, STRATEGY_FILES
from ..settings import RUN_SECTIONS

#: The sections every run of a strategy that trains the classifier depends on.
TRAINED = ("classifier", "al")
#: ... and of a strategy that scans the whole pool every cycle (``scan.max_cycles`` may stop it early).
SCANS = (*TRAINED, "scan")
#: The uncertainty scores an ASAL variant may maximise (implemented in :data:`asal.scores.SCORES`).
SCORE_NAMES = ("entropy", "margin", "least-confidence")
#: ... and Learning Loss's predicted loss, which a module trained beside the classifier gives (``asal-ll-*``).
LEARNED_LOSS = "loss"


@dataclass(frozen=True)
class StrategySpec:
    """One registered strategy.

    ``impl``: ``"module:attribute"`` of its :class:`~asal.strategies.base.Strategy` subclass, whose ``load``
    classmethod builds it; imported only when a run builds it. ``files``: the file kinds it reads;
    ``features_model``, ``pca`` and ``index`` are those of ``space``. ``sections``: the config sections its runs
    depend on (:data:`asal.settings.RUN_SECTIONS`); ``section.key`` takes one key of a section. ``outputs``: an
    extra run output (:data:`asal.paths.RUN_OUTPUTS`), at most one: the annotated synthetic items.
    ``whole_pool``: the fully supervised bound (trained once on every pool label, never selects).
    ``image_classifier``: its runs train the experiment's classifier (ADBA's trains in latent space, so its
    entropies are not comparable). ``shows_matches``: it matches synthetic images to pool samples, which the
    paper's Fig. 2 shows. ``score``: the uncertainty score an ASAL variant maximises (:data:`SCORE_NAMES`, or
    :data:`LEARNED_LOSS`).
    """

    name: str
    summary: str
    impl: str
    files: tuple[str, ...] = ()
    space: str | None = None
    sections: tuple[str, ...] = TRAINED
    outputs: tuple[str, ...] = ()
    binary_only: bool = False
    needs_dropout: bool = False
    whole_pool: bool = False
    image_classifier: bool = True
    shows_matches: bool = False
    score: str = "entropy"

    def __post_init__(self):
        """A declaration that names what does not exist fails here, when the registry loads, not in a run."""
        wrong = {
            "file kinds": set(self.files) - set(STRATEGY_FILES),
            "sections": {name.partition(".")[0] for name in self.sections} - set(RUN_SECTIONS),
            "outputs": set(self.outputs) - set(RUN_OUTPUTS),
            "score": {self.score} - {*SCORE_NAMES, LEARNED_LOSS},
        }
        for what, names in wrong.items():
            if names:
                raise ValueError(f"strategy {self.name!r} declares unknown {what} {sorted(names)}")
        if len(self.outputs) > 1:
            raise ValueError(f"strategy {self.name!r} declares {len(self.outputs)} outputs; a run writes at most one")
        if {"pca", "index", "features_model"} & set(self.files) and self.space not in SPACES:
            raise ValueError(f"strategy {self.name!r} reads a feature space's files but names no space of {SPACES}")

    def required_files(self) -> tuple[str, ...]:
        """The file kinds a run must be given: ``features_model`` only where the space has a model, and none of
        the advisory ones (:data:`asal.paths.ADVISORY_FILES`), which it may be given."""
        return tuple(k for k in self.files if (k != "features_model" or FEATURE_MODELS.get(self.space))
                     and k not in ADVISORY_FILES)

    def config_slice(self, exp: dict) -> dict:
        """The part of experiment ``exp`` (a validated config) that this strategy's runs depend on."""
        out: dict = {}
        for name in self.sections:
            section, _, key = name.partition(".")
            if key:
                out.setdefault(section, {})[key] = exp[section][key]
            else:
                out[section] = exp[section]
        return out

    def implementation(self):
        module, _, attribute = self.impl.partition(":")
        return getattr(importlib.import_module(module), attribute)


REGISTRY: dict[str, StrategySpec] = {}


def register(spec: StrategySpec) -> StrategySpec:
    if spec.name in REGISTRY:
        raise ValueError(f"strategy {spec.name!r} is registered twice")
    REGISTRY[spec.name] = spec
    return spec


def spec(name: str) -> StrategySpec:
    """The registered strategy ``name``; a config error naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise BadConfig(f"strategy {name!r} is not registered (known: {', '.join(REGISTRY)})") from None


def _pool(name: str, summary: str, cls: str, **needs) -> None:
    register(StrategySpec(name, summary, f"asal.strategies.{cls}", **needs))


_pool("random", "Uniform without replacement over the unlabelled pool (the lower bound).", "baselines:RandomSampling")
_pool("max-entropy", "The unlabelled pool samples of highest predicted entropy: a scan of the whole pool.",
      "baselines:MaxEntropySampling", sections=SCANS)
_pool("margin", "The pool samples with the smallest gap between their two most probable classes.",
      "baselines:MarginSampling", sections=SCANS)
_pool("least-confidence", "The pool samples whose most probable class has the lowest probability.",
      "baselines:LeastConfidenceSampling", sections=SCANS)
_pool("bald", "BALD: mutual information of prediction and weights over MC-dropout masks (needs dropout).",
      "bald:BaldSampling", sections=(*SCANS, "bald"), needs_dropout=True)
_pool("badge", "BADGE: k-means++ seeding on the last layer's gradient embeddings of the pool.", "badge:BadgeSampling",
      sections=SCANS)
_pool("coreset", "Core-set: greedy k-center in the classifier's penultimate features of the whole pool.",
      "coreset:CoreSetSampling", sections=SCANS)
_pool("learning-loss", "Learning Loss: a module on the CNN's blocks, trained with it, predicts each sample's loss; the "
      "pool samples of highest predicted loss (a scan of the whole pool).", "learning_loss:LearningLossSampling",
      sections=(*SCANS, "learning_loss"))
_pool("vaal", "VAAL: a beta-VAE and a discriminator trained adversarially each cycle; the pool samples the "
      "discriminator finds least likely to be labelled (a scan of the whole pool).", "vaal:VaalSampling",
      sections=(*SCANS, "vaal"))
_pool("typiclust", "TypiClust: k-means of the pool in autoencoder features into labelled + new clusters; the most "
      "typical sample of each of the largest uncovered clusters.", "typiclust:TypiClustSampling", files=("pca",),
      space="auto", sections=(*SCANS, "typiclust"))
_pool("full", "The fully supervised bound: one training on every pool label.", "baselines:FullySupervised",
      sections=("classifier", "full"), whole_pool=True)

for _score in SCORE_NAMES:  # the paper's ASAL (entropy) and its future work (the other scores)
    _suffix = "" if _score == "entropy" else f"-{_score}"
    for _space in SPACES:
        register(StrategySpec(
            f"asal-{_space}{_suffix}", f"ASAL: maximise the {_score} of h(G(z)); label the nearest pool sample in "
            f"{_space} features.", "asal.strategies.adversarial:AdversarialSampling",
            files=("gan", "gan_metrics", "features_model", "pca", "index"), space=_space, sections=(*TRAINED, "asal"),
            shows_matches=True, score=_score))
    register(StrategySpec(
        f"asal-cls{_suffix}", f"ASAL: maximise the {_score} of h(G(z)); match in the classifier's own features "
        "of the whole pool (linear cost).", "asal.strategies.adversarial:AdversarialSampling", files=("gan", "gan_metrics"),
        sections=(*TRAINED, "asal"), shows_matches=True, score=_score))
for _space in SPACES:
    register(StrategySpec(
        f"asal-plus-{_space}", f"ASAL with a diversity term and the most uncertain of each synthetic sample's "
        f"nearest pool samples in {_space} features (beyond the paper).",
        "asal.strategies.adversarial:AdversarialSampling", files=("gan", "gan_metrics", "features_model", "pca", "index"),
        space=_space, sections=(*TRAINED, "asal", "asal_plus"), shows_matches=True))
for _space in SPACES:  # the paper's future work: ASAL for the learned loss, at a cost that does not grow with the pool
    register(StrategySpec(
        f"asal-ll-{_space}", f"ASAL for Learning Loss: maximise the predicted loss of G(z); label the nearest pool "
        f"sample in {_space} features.", "asal.strategies.adversarial:AdversarialSampling",
        files=("gan", "gan_metrics", "features_model", "pca", "index"), space=_space,
        sections=(*TRAINED, "asal", "learning_loss"), shows_matches=True, score=LEARNED_LOSS))
register(StrategySpec(
    "gaal", "GAAL: the ascent's synthetic images themselves, labelled by the oracle, join the training set.",
    "asal.strategies.gaal:GenerativeAnnotation", files=("gan", "gan_metrics", "oracle", "oracle_metrics"),
    sections=(*TRAINED, "asal.steps", "asal.lr", "asal.tolerance", "asal.patience"), outputs=("synthetic",)))
register(StrategySpec(
    "adba", "ADBA: lines in the GAN's latent space through the pool codes nearest a latent logistic "
    "regression's boundary, annotated by the oracle (binary experiments).", "asal.strategies.adba:LineSampling",
    files=("gan", "gan_metrics", "oracle", "codes"), sections=("al", "adba"), outputs=("lines",), binary_only=True,
    image_classifier=False))

# Strategies of other packages, last: their modules import the package, which needs the names above. The
# registry imports the module an entry point names, so a plugin that keeps its entry apart from its Strategy
# class (whose module imports torch) keeps `asal summarize` and the plots free of torch.
for _entry in entry_points(group="asal.strategies"):
    try:
        register(_entry.load())
    except Exception as exc:  # a broken plugin must say which it is
        raise BadConfig(f"the strategy plugin {_entry.name!r} ({_entry.value}) does not load: {exc!r}") from exc

STRATEGIES = tuple(REGISTRY)


def is_bound(name: str) -> bool:
    """Whether ``name`` (a strategy, or a variant of a benchmark's own) is the fully supervised bound."""
    return name in REGISTRY and REGISTRY[name].whole_pool


def trains_image_classifier(name: str) -> bool:
    """Whether ``name``'s runs measure the experiment's image classifier (not, like ADBA, a latent one)."""
    return name not in REGISTRY or REGISTRY[name].image_classifier

__all__ = ["LEARNED_LOSS", "REGISTRY", "STRATEGIES", "StrategySpec", "is_bound", "register", "spec", "trains_image_classifier"]
