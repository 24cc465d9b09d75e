# asal-pipeline: Adversarial Sampling for Active Learning and its baselines.
# Entry point only: config, validation, rule files, default target. See README.md and config/README.md.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# The workflow asks the package what each strategy needs (its files, config sections, outputs), and validates
# the config with the package's schema, whose strategy list is the package's registry.
try:
    from asal.config import validate_config
    from asal.errors import BadConfig
except ImportError as exc:
    raise WorkflowError(
        f"the workflow needs the `asal` package where Snakemake runs, but it does not import ({exc}). Install it "
        "there: `pip install -e .` in this folder, or `make install` and then `. .venv/bin/activate`."
    )


configfile: "config/config.yaml"


try:
    config.update(validate_config(config))  # every default filled
except BadConfig as exc:
    raise WorkflowError(str(exc))


# `snakemake --report results/report.html`: the description on its front page; captions in docs/captions/.
report: "docs/captions/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/generative.smk"
include: "rules/features.smk"
include: "rules/al.smk"
include: "rules/plots.smk"


rule all:
    input:
        get_all_targets(),
    default_target: True


# `snakemake --cores 8 preprocess_mnist10`: the GAN, autoencoder, oracle, features, PCA and indexes only (no
# oracle where the pool has no labels: rules/common.smk, labelled).
for _exp in EXPERIMENTS:

    rule:
        name:
            f"preprocess_{_exp}"
        input:
            get_preprocessing_targets(_exp),
