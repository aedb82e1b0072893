#!/usr/bin/env bash
# CI: every paper recipe (conf/*_llama3.yaml, conf/selfrag_llama2.yaml) run end to end on CPU
# with tiny models, as a user would try one before booking GPUs (`pytest -m paper`, about
# 3 minutes in one process, 2 min 18 s as two on 2 cores). Runs in the main environment, which
# .ci/run has activated.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q -ra -n auto -m paper tests/test_paper_recipe_*.py
