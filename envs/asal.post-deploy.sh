#!/usr/bin/env bash
# Run by Snakemake inside the new conda environment: install the asal package itself from this checkout
# (the folder above this script), without touching the dependencies conda installed.
set -euo pipefail
python -m pip install --no-deps -e "$(cd "$(dirname "$0")/.." && pwd)"
