# asal-pipeline: Adversarial Sampling for Active Learning and its baselines.
# Entry point only: config, validation, rule files, default target. See README.md and config/README.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


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


# `snakemake --cores 8 preprocess_mnist10`: the GAN, autoencoder, oracle, features, PCA and indexes only.
for _exp in EXPERIMENTS:

    rule:
        name:
            f"preprocess_{_exp}"
        input:
            get_preprocessing_targets(_exp),
