# Two entry points, each doing all of its own set-up on a fresh clone:
#   make study   set up, then run the main job: five rules on three fully binary models (bnn_headline, about 15 min on 2 cores)
#   make test    set up, then run every check CI runs
VENV       ?= .venv
PY         := $(VENV)/bin/python
BIN        := $(VENV)/bin
# On the study's machines torch/torchvision come from local disk at these versions; elsewhere pip fetches
# them (override, e.g. TORCH_SPEC="torch torchvision" PIP_INDEX_URL=https://download.pytorch.org/whl/cpu).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP      := $(VENV)/.bnn-installed
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: reproduce-cpu setup study test check-sync check-clean nbtest pytest docs-smoke lab docs

setup: $(STAMP)
$(STAMP): settings.ini setup.py pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC) 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import torch, torchvision" || { echo "torch/torchvision failed to install: set TORCH_SPEC"; exit 1; }
	$(PY) -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import bnn_study, nbdev, nbval, fastai" && touch $@

study: $(STAMP)
	$(BIN)/bnn_headline --out runs/quick

test: $(STAMP) check-sync check-clean nbtest pytest docs-smoke
	@echo "make test: all checks passed"

# notebooks and package agree, notebooks are clean (only inside a git checkout)
check-sync: $(STAMP)
	$(BIN)/nbdev_export
	git diff --exit-code -- bnn_study || { echo "bnn_study/ differs from the notebooks: run nbdev_export and commit"; exit 1; }
check-clean: $(STAMP)
	$(BIN)/nbdev_clean
	git diff --exit-code -- nbs || { echo "notebooks are not clean: run nbdev_clean and commit"; exit 1; }

# every notebook with nbdev_test (slow/cuda cells skipped), then nbval over nbs/ and the plain tests
nbtest: $(STAMP)
	BNN_FAST=1 timeout 1800 $(BIN)/nbdev_test --timing
pytest: $(STAMP)
	BNN_FAST=1 timeout 1800 $(BIN)/pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:cacheprovider nbs tests

# the documentation build up to the Quarto render (Quarto itself runs in the Pages workflow)
docs-smoke: $(STAMP)
	rm -rf _proc
	$(PY) -W ignore -c "from nbdev.serve import proc_nbs; proc_nbs(); from pathlib import Path; \
	want = sorted(p.name for p in Path('nbs').glob('*.ipynb')); got = sorted(p.name for p in Path('_proc').glob('*.ipynb')); \
	assert got == want, f'_proc/ is missing {set(want) - set(got)}'; print(f'_proc/ built: {len(got)} notebooks')"

lab: $(STAMP)
	$(BIN)/jupyter lab nbs
docs: $(STAMP)
	$(BIN)/nbdev_docs

# the CPU-scale reproduction of the paper's tables T2, T3 and T1 (3 seeds, two worker processes; resumable:
# rerun after a kill and it continues). Records land in results/cpu/.
reproduce-cpu: $(STAMP)
	for t in T2 T3 T1; do $(BIN)/bnn_sweep --experiment $$t --preset cpu --seeds 3 --workers 2 --out results/cpu || exit 1; done
