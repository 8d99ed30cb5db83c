#!/usr/bin/env bash
# Create .venv with CPU torch and molremote (editable) with every extra but the GPU one. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
stamp=.venv/.molremote-deps
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install -q --upgrade pip
  # CPU torch first: with torch==2.13.0 present the project's range installs nothing more.
  python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[train,remote,test,tabular,protein]"
  # DeepInsight's big backbones (models/deepinsight.py): pure torch, but geffnet declares torchvision, whose
  # index build is CUDA-only here and would replace CPU torch, hence --no-deps (the pins are the tested ones)
  python -m pip install -q --no-deps "geffnet==1.0.2" "resnest==0.0.5"
  echo "$want" > "$stamp"
fi
