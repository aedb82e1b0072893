#!/usr/bin/env bash
# CI: every paper recipe (conf/*_llama3.yaml, conf/selfrag_llama2.yaml) run end to end on CPU
# with tiny models, as a user would try one before booking GPUs (`pytest -m paper`, about
# 3 minutes). Runs in the main environment, which .ci/run has activated.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q -ra -m paper tests/test_paper_recipe_*.py
