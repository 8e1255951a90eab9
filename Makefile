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

.PHONY: reproduce-cpu ladder gpu-kit gpu-window setup study test check-sync check-clean nbtest pytest docs-smoke lab docs

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
	BNN_FAST=1 timeout 2400 $(BIN)/pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:cacheprovider nbs tests

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


# the recipe ladder for binary BP (notebook 03a, results page 44): first the distillation teachers, the float BP runs
# with their weights at the rates the `cpu` sweep selected for them (VGG-19 1e-4, the others 1e-3), on the test split
# and on the tuning split; then each step of the ladder (resumable). LADDER_MODELS narrows the models; the bireal step
# runs on VGG-19 only (MobileNetV2 and the Mixer already have real-valued residual adds: the step changes nothing there).
# Then DFA and DRTP with the whole recipe, and on VGG-19 the two rungs without RPReLU (BP; DFA for kd), each reading
# its teachers (test and tuning split) from its own folder.
LADDER_MODELS ?= vgg19_bn,mobilenet_v2,mlp_mixer
CPU_SCALE = --acts float --weights float --rule bp --img-size 32 --epochs 5 --bs 64 --aug flip --seed 0 --save --quiet
ladder: $(STAMP)
	for split in test tune; do d=results/cpu_ladder/$$( [ $$split = test ] && echo runs || echo tune ); \
	  case ",$(LADDER_MODELS)," in *,vgg19_bn,*) $(BIN)/bnn_train --model vgg19_bn --width 0.25 --lr 1e-4 --split $$split $(CPU_SCALE) --out $$d || exit 1;; esac; \
	  case ",$(LADDER_MODELS)," in *,mobilenet_v2,*) $(BIN)/bnn_train --model mobilenet_v2 --width 0.25 --lr 1e-3 --split $$split $(CPU_SCALE) --out $$d || exit 1;; esac; \
	  case ",$(LADDER_MODELS)," in *,mlp_mixer,*) $(BIN)/bnn_train --model mlp_mixer --width 1 --patch-size 4 --dim 128 --depth 8 --lr 1e-3 --split $$split $(CPU_SCALE) --out $$d || exit 1;; esac; \
	done
	for r in xnor bireal react nowd kd; do m=$(LADDER_MODELS); \
	  if [ $$r = bireal ]; then case ",$$m," in *,vgg19_bn,*) m=vgg19_bn;; *) continue;; esac; fi; \
	  $(BIN)/bnn_sweep --experiment T2 --preset cpu_$$r --models $$m --rules bp --seeds 3 --workers 2 --out results/cpu_ladder || exit 1; done
	$(BIN)/bnn_sweep --experiment T2 --preset cpu_kd --models $(LADDER_MODELS) --rules dfa,drtp --seeds 3 --workers 2 \
	  --out results/cpu_ladder
	case ",$(LADDER_MODELS)," in *,vgg19_bn,*) for s in runs tune; do mkdir -p results/cpu_ladder_diag/$$s; \
	  cp -n results/cpu_ladder/$$s/vgg19_bn_f32_bp_* results/cpu_ladder_diag/$$s/; done; \
	  $(BIN)/bnn_sweep --experiment T2 --preset cpu_react_no_rprelu --models vgg19_bn --rules bp --seeds 3 --workers 2 \
	    --out results/cpu_ladder_diag || exit 1; \
	  $(BIN)/bnn_sweep --experiment T2 --preset cpu_kd_no_rprelu --models vgg19_bn --rules bp,dfa --seeds 3 --workers 2 \
	    --out results/cpu_ladder_diag || exit 1;; esac

# the GPU window (notebook 34). Here: `make gpu-kit` fills the ignored folder .gpu_kit with the wheels the device's
# Python lacks (3.12; fastprogress 1.0.3, which does not pull in fasthtml) and the 64 px images as WebP. There, on the
# lent machine (the device tool's run, carrying .gpu_kit): `make gpu-window DEADLINE=540`.
KIT_WHEELS = fastai==2.8.7 fastcore==1.14.5 fastprogress==1.0.3 fasttransform==0.0.2 fastdownload==0.0.8 \
             plum-dispatch==2.9.0 beartype==0.23.1
KIT_QUALITY ?= 80
DEADLINE ?= 540
gpu-kit: $(STAMP)
	mkdir -p .gpu_kit
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .gpu_kit $(KIT_WHEELS)
	test -f .gpu_kit/imagenette64.npz || $(BIN)/bnn_carry pack .gpu_kit/imagenette64.npz --size 64 --quality $(KIT_QUALITY)
	du -sh .gpu_kit
gpu-window:
	python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu_kit/*.whl
	PYTHONPATH=/tmp/site:$(CURDIR) python3 -c "from bnn_study.window import bnn_window_cli; bnn_window_cli()" \
	  --deadline $(DEADLINE)
