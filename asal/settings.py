"""Each config section as one typed, frozen dataclass, built from the validated config.

The schema (``asal/schema.yaml``) is the one source of defaults: a section is always validated and filled
there first (:func:`asal.config.validate_slice`), and only then turned into its dataclass, which has no
defaults of its own. ``Section.of(**values)`` does both, so a test or a script writes only what it changes:
``TrainConfig.of(model="linear", steps=30)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from .config import check_sections, validate_slice
from .errors import BadConfig
from .files import config_hash


#: Images per forward pass when a model scores many (the pool scans, the test set): not a config key, a fact of
#: the hardware. On this project's 2-core CPU the CNN scores about 10,000 MNIST images/s per thread in batches
#: of 32 to 256, and 2,700 in batches of 1,024, whose activations no longer fit the cache.
INFERENCE_BATCH = 256


class Section:
    """A config section's dataclass; ``schema_def`` names its definition in the schema."""

    schema_def: ClassVar[str]

    @classmethod
    def of(cls, where: str = "config", **values):
        """Validate ``values`` as the section (defaults filled from the schema) and build the dataclass."""
        values = {key: list(v) if isinstance(v, tuple) else v for key, v in values.items()}  # JSON has no tuples
        return cls.from_validated(validate_slice(values, cls.schema_def, where))

    @classmethod
    def from_validated(cls, values: dict):
        return cls(**values)


@dataclass(frozen=True)
class TrainConfig(Section):
    """The ``classifier`` section (and the ``oracle``'s, which is a classifier too)."""

    schema_def: ClassVar[str] = "classifier"
    model: str
    optimizer: str
    lr: float
    weight_decay: float
    steps: int
    batch_size: int
    dropout: float


@dataclass(frozen=True)
class AlConfig(Section):
    """The ``al`` section: the initial labelled set, the samples per cycle and the budget."""

    schema_def: ClassVar[str] = "al"
    initial: int
    new: int
    budget: int


@dataclass(frozen=True)
class AsalConfig(Section):
    """The ``asal`` section: the ascent and the matching of ASAL (and GAAL's ascent)."""

    schema_def: ClassVar[str] = "asal"
    steps: int
    lr: float
    batch_size: int | None
    k: int
    tolerance: float
    patience: int


@dataclass(frozen=True)
class AsalPlusConfig(Section):
    """The ``asal_plus`` section: what asal-plus adds to the paper's ASAL. :data:`PAPER_ASAL` has it all off."""

    schema_def: ClassVar[str] = "asal_plus"
    rerank: int
    prior_weight: float
    sphere: bool
    diversity: float


#: The paper's ASAL: no re-ranking, no prior, no sphere, no diversity term.
PAPER_ASAL = AsalPlusConfig(rerank=0, prior_weight=0.0, sphere=False, diversity=0.0)


@dataclass(frozen=True)
class BaldConfig(Section):
    schema_def: ClassVar[str] = "bald"
    samples: int


@dataclass(frozen=True)
class LearningLossConfig(Section):
    """The ``learning_loss`` section: the loss-prediction module and its ranking loss."""

    schema_def: ClassVar[str] = "learning_loss"
    weight: float
    margin: float
    detach_after: float
    width: int


@dataclass(frozen=True)
class VaalConfig(Section):
    """The ``vaal`` section: VAAL's beta-VAE and discriminator, trained every cycle."""

    schema_def: ClassVar[str] = "vaal"
    latent_dim: int
    beta: float
    adversary_weight: float
    steps: int
    batch_size: int
    lr: float


@dataclass(frozen=True)
class TypiclustConfig(Section):
    """The ``typiclust`` section: its clustering and typicality."""

    schema_def: ClassVar[str] = "typiclust"
    neighbours: int
    min_cluster_size: int
    max_clusters: int


@dataclass(frozen=True)
class ScanConfig(Section):
    """The ``scan`` section: where a pool scan stops before the budget."""

    schema_def: ClassVar[str] = "scan"
    max_cycles: int | None


@dataclass(frozen=True)
class FullConfig(Section):
    """The ``full`` section: how long the fully supervised bound trains, sized from the pool unless ``steps``."""

    schema_def: ClassVar[str] = "full"
    steps: int | None
    epochs: float

    def train_steps(self, classifier: TrainConfig, n_pool: int) -> int:
        """Optimiser steps of the bound's training on ``n_pool`` labels: ``epochs`` passes of mini-batches, or
        for lbfgs (a full-batch method) the classifier's own iterations."""
        if self.steps is not None:
            return self.steps
        if classifier.optimizer == "lbfgs":
            return classifier.steps
        return math.ceil(self.epochs * n_pool / classifier.batch_size)

    def describe(self, classifier: TrainConfig) -> str:
        """How the bound was trained, for a legend: "5 passes over the pool"."""
        if self.steps is not None:
            return f"{self.steps:,} steps"
        if classifier.optimizer == "lbfgs":
            return f"lbfgs, {classifier.steps} iterations"
        return f"{self.epochs:g} passes over the pool"


@dataclass(frozen=True)
class AdbaConfig(Section):
    """The ``adba`` section: points per line, its half length in latent units, the latent classifier's C."""

    schema_def: ClassVar[str] = "adba"
    points: int
    half_length: float
    C: float


@dataclass(frozen=True)
class LatentConfig(Section):
    """The ``latent`` section: inverting the generator for every pool and test image (ADBA's codes)."""

    schema_def: ClassVar[str] = "latent"
    steps: int
    lr: float
    prior_weight: float
    batch_size: int
    seed: int


@dataclass(frozen=True)
class GanConfig(Section):
    """The ``gan`` section."""

    schema_def: ClassVar[str] = "gan"
    arch: str
    latent_dim: int
    iterations: int
    batch_size: int
    critic_iters: int
    gp_lambda: float
    penalty: str
    penalty_every: int
    lr_critic: float | None
    ema: float
    consistency: float
    lr: float
    betas: tuple[float, float]
    seed: int

    @classmethod
    def from_validated(cls, values: dict):
        return cls(**{**values, "betas": tuple(values["betas"])})


@dataclass(frozen=True)
class GanQualityConfig(Section):
    """The ``gan_quality`` section: the thresholds of the GAN's quality gate."""

    schema_def: ClassVar[str] = "gan_quality"
    class_share_min: float
    class_share_max: float
    confident_min: float
    samples: int


@dataclass(frozen=True)
class AutoencoderConfig(Section):
    """The ``autoencoder`` section."""

    schema_def: ClassVar[str] = "autoencoder"
    code_dim: int
    steps: int
    batch_size: int
    lr: float
    seed: int


#: The sections an AL run may read, by name.
RUN_SECTIONS = {"classifier": TrainConfig, "al": AlConfig, "asal": AsalConfig, "asal_plus": AsalPlusConfig,
                "bald": BaldConfig, "full": FullConfig, "adba": AdbaConfig, "scan": ScanConfig,
                "learning_loss": LearningLossConfig, "vaal": VaalConfig, "typiclust": TypiclustConfig}


@dataclass(frozen=True)
class RunSettings:
    """The config of one AL run: every section a strategy may read, validated, defaults filled."""

    classifier: TrainConfig
    al: AlConfig
    asal: AsalConfig
    asal_plus: AsalPlusConfig
    bald: BaldConfig
    full: FullConfig
    adba: AdbaConfig
    scan: ScanConfig
    learning_loss: LearningLossConfig
    vaal: VaalConfig
    typiclust: TypiclustConfig

    @classmethod
    def of(cls, sections: dict | None = None, *, strategy: str | None = None, where: str = "--params") -> RunSettings:
        """From ``{section: values}`` (missing sections and keys take the schema's defaults), with the checks
        between keys (:func:`asal.config.check_sections`) for ``strategy``."""
        sections = sections or {}
        unknown = set(sections) - set(RUN_SECTIONS)
        if unknown:
            raise BadConfig(f"{where}: unknown section(s) {sorted(unknown)}; expected some of {list(RUN_SECTIONS)}")
        filled = {name: validate_slice(sections.get(name, {}), kind.schema_def, where)
                  for name, kind in RUN_SECTIONS.items()}
        check_sections(filled, [strategy] if strategy else [], where)
        return cls(**{name: RUN_SECTIONS[name].from_validated(values) for name, values in filled.items()})

    def digest(self) -> str:
        """A short digest of every section (checkpoints record it)."""
        return config_hash(dataclasses.asdict(self))
