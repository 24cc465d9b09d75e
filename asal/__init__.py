"""asal: Adversarial Sampling for Active Learning (Mayer & Timofte, WACV 2020) and its baselines.

Every stage of the workflow is a plain function here and a sub-command of the ``asal`` command, so it can
be run and tested without Snakemake.
"""

__version__ = "0.1.0"
