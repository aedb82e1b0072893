#!/usr/bin/env bash
# CI, third environment: the dependency floors pyproject.toml declares, tested. Every direct
# requirement of ragline and of its demo and dev extras is installed at the lowest version the
# floors allow (uv's `--resolution lowest-direct`; what those need in turn at its newest that
# fits), and the default test run must pass there too. A floor raised in pyproject.toml is one
# this run showed to be needed; one that cannot be met as declared fails here, not on a user's
# machine. About 3 GB of wheels (the floor torch from PyPI is a CUDA build). The venv is reused
# when it exists; remove it after lowering a floor, as versions already installed are kept.
#   RAGLINE_FLOORS_VENV=/path  where the venv lives (default .ci-venv-floors in the clone)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${RAGLINE_FLOORS_VENV:-.ci-venv-floors}"
tools=.ci-venv-uv
[[ -x "$tools/bin/uv" ]] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q uv; }
[[ -x "$venv/bin/python" ]] || "$tools/bin/uv" venv -q --seed -p python3 "$venv"
# --compile-bytecode: uv writes no .pyc files (pip does), and where PYTHONDONTWRITEBYTECODE is set
# Python does not write them either, so every process the tests start compiled pandas, pyarrow
# and the rest from source: the floors run took 911 s against 515 s for the same tests
VIRTUAL_ENV="$PWD/$venv" "$tools/bin/uv" pip install -q --compile-bytecode --resolution lowest-direct \
  -e ".[demo,dev]"
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
print("ci/floors:", ", ".join(f"{n} {version(n)}" for n in (
    "torch", "transformers", "trl", "peft", "accelerate", "datasets", "pyarrow", "numpy",
    "pydantic", "rich", "filelock", "faiss-cpu", "pytest")))
PY
PATH="$PWD/$venv/bin:$PATH" pytest -q -n auto
