# The two commands of the README, and a few helpers. Everything runs inside .venv, which `make` creates.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One job thread per real core: on a 2-core machine, --cores 8 runs the GAN beside six AL jobs and thrashes.
CORES ?= $(shell nproc 2>/dev/null || echo 2)
# On 1-2 cores the long trainings take one thread each, so the runs that need no GAN fill the other core: a
# second thread makes the GAN 1.7x faster, a second job 2x (docs/speed). The rules declare 2 for larger machines.
SET_THREADS := $(if $(filter 1 2,$(CORES)),--set-threads train_gan=1 train_oracle=1 train_autoencoder=1 invert_gan=1)
TARGET ?= $(addprefix results/mnist10/,accuracy.pdf accuracy.png entropy.pdf entropy.png timings.pdf timings.png \
	samples.png tables.html config.yaml)

.PHONY: run scale label test lint install unlock report bench-selection bench-asal-plus clean-results

# Create the venv and install the package (with its test extras) when pyproject.toml is newer than the stamp.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake $(SET_THREADS) --cores $(CORES) $(TARGET)

# The 16M-image pool of config/scale/mnist16m.yaml, end to end (docs/scale: time, memory and disk it takes).
SCALE_TARGET := $(addprefix results/mnist16m/,accuracy.pdf accuracy.png timings.pdf timings.png tables.html config.yaml)
scale: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake $(SCALE_TARGET) $(SET_THREADS) --cores $(CORES) \
		--configfile config/scale/mnist16m.yaml

# Label in the browser (README: People label): makes the experiment's pre-processing, then serves the page on
# http://127.0.0.1:8765/. EXP, STRATEGY (default: the experiment's first), SEED and CONFIG as you need them.
CONFIG ?= config/config.yaml
SEED ?= 0
label: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake $(SET_THREADS) --cores $(CORES) --configfile $(CONFIG) preprocess_$(EXP)
	$(BIN)/asal label --config $(CONFIG) --experiment $(EXP) --seed $(SEED) $(if $(STRATEGY),--strategy $(STRATEGY))

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint

lint: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint

# One self-contained HTML page of what `make run` made: figures, tables, sample grids and the config, captioned.
report: install
	$(BIN)/snakemake --report results/report.html $(TARGET)

# Selection time against pool size, 10k to 16M (benchmarks/selection_scaling.py; ~30 min on 2 cores, ~12 GB RAM,
# 3.2 GB of cached pool features under results/bench/cache): CSV, machine description and figures in results/bench/.
bench-selection: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores 1 data/mnist10/pool.h5
	$(BIN)/python benchmarks/selection_scaling.py --pool data/mnist10/pool.h5 --cache results/bench/cache \
		--out results/bench/selection_scaling.csv

# ASAL, its baselines and each change of asal-plus on one experiment, 5 seeds (benchmarks/asal_plus_ablation.py):
# makes the experiment's pre-processing first; tables in results/ablation/$(EXP)/. EXP=mnist2 takes ~20 min on
# 2 cores after its GAN; mnist10 a few hours.
EXP ?= mnist2
bench-asal-plus: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores $(CORES) models/$(EXP)/autoencoder.pt \
		$(foreach space,raw auto disc,features/$(EXP)/$(space)_kdtree.index)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/asal_plus_ablation.py --experiment $(EXP) \
		--seeds 0 1 2 3 4 --jobs $(CORES)

# After a hard kill of Snakemake (SIGKILL, a closed session): remove the lock it left, keep every output.
unlock: install
	$(BIN)/snakemake --unlock --cores 1 $(TARGET)

# Workflow outputs only: benchmarks/*.py are tracked scripts, benchmarks/<rule>/ are Snakemake's timings.
clean-results:
	rm -rf results logs benchmarks/*/
