# usage (device): bash .whl/gpu_go.sh DEADLINE_S WORKERS TABLES EXCLUDE COMMIT
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD BNN_DATA=/tmp/data BNN_CACHE=$PWD/.whl/cache BNN_GIT_COMMIT=$5 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
mkdir -p /tmp/data/imagenette2 && (cd /tmp/data/imagenette2 && xargs -a $OLDPWD/.whl/imagenette_files.txt -d '\n' dirname | sort -u | xargs mkdir -p && xargs -a $OLDPWD/.whl/imagenette_files.txt -d '\n' touch)
nvidia-smi -L; python3 -c "import torch, fastai; print(torch.__version__, fastai.__version__, torch.cuda.is_available())"
python3 .whl/gpu_sweep.py $1 $2 $3 $4 2>&1 | tee ${OUT:-.}/gpu_sweep.log
