#!/usr/bin/env bash
# On the lent GPU machine, from the repo root: bash .gpu/go.sh COMMIT DEADLINE_S WORKERS [more bnn_sweep arguments]
# T2 at the gpu preset with the package's local pool (WORKERS processes sharing the GPU) until DEADLINE_S, then the records to $OUT.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD BNN_DATA=/tmp/data BNN_CACHE=/tmp/cache BNN_GIT_COMMIT=$1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
OUTD=${OUT:-/tmp/out}; mkdir -p $OUTD
nvidia-smi -L; python3 -c "import torch, fastai, PIL.features as f; print(torch.__version__, fastai.__version__, torch.cuda.is_available(), 'webp', f.check('webp'))"
python3 .gpu/data64.py unpack .gpu/imagenette64.npz /tmp/data || exit 1
t0=$(date +%s)
timeout -s TERM $2 python3 -c "import sys; sys.argv=['bnn_sweep','--experiment','T2','--preset','gpu','--out','results/gpu_t2','--workers','$3']+sys.argv[1:]; from bnn_study.experiments import bnn_sweep_cli; bnn_sweep_cli()" "${@:4}" 2>&1 | tee $OUTD/sweep.log
echo "sweep ended after $(( $(date +%s) - t0 )) s"; pkill -f multiprocessing; sleep 1
nvidia-smi --query-gpu=name,memory.used --format=csv
tar czf $OUTD/gpu_t2.tar.gz --exclude=.claims results/gpu_t2 && ls -la $OUTD && find results/gpu_t2 -name '*.json' | wc -l
