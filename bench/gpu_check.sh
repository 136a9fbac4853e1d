#!/usr/bin/env bash
# The GPU check of issue 11, as run once on the lent GPU machine from the repository root, with the
# wheels of `.venv/bin/python -m bench.gpu_wheels` carried along (run tool: carry [".whl"]). That
# machine's Python has torch and the Hugging Face core; the wheels add what the engine's run path needs
# besides (datasets, evaluate, scikit-learn, ...), installed beside it so they come first on PYTHONPATH.
# Results: $OUT/gpu_check.json and $OUT/logs/. The check ends itself by its budget; `timeout` backs it up.
set -euo pipefail
if python3 -m pip --version >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
else  # no pip: unpacked wheels import as well (the only .data files are dill's scripts)
  for wheel in .whl/*.whl; do python3 -m zipfile -e "$wheel" /tmp/site; done
fi
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv || true
timeout -k 10 330 python3 -m bench.gpu_check --out "${OUT:-gpu-check-out}" --budget-s 270
