#!/usr/bin/env bash
# CI: install the real engines the executor conformance suite (tests/executors/) runs on, then
# run it: a single-node SLURM cluster (Debian's slurm-wlm + munge, slurmdbd over
# mariadb-server-core for accounting) and Ray 2.60.0 with submitit in the given Python environment.
#
#   .ci/engines.sh [PYTHON]     PYTHON: the interpreter of the venv under test (default python3)
#
# The suite's session fixtures start the clusters with tests/engines/{slurm,ray}.sh and stop them
# by PID at the end (RAGLINE_ENGINES=1). Measured on the 2-core VM: apt-get about 20 s
# (18 packages), pip about 20 s, the suite 6 min at load average 4 (11 min at 10 to 28).
# Needs root and apt-get for SLURM; without them only Ray is installed and the SLURM cases skip
# (pytest -ra lists them with the reason).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}

# not mariadb-server: it upgrades perl; the -core packages are all slurmdbd needs
PKGS="slurm-wlm munge slurmdbd mariadb-server-core mariadb-client-core"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null; then
    t0=$SECONDS
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -q --no-install-recommends $PKGS >/dev/null; }
    echo "[engines] apt-get install $PKGS: $((SECONDS - t0))s"
  fi
else
  echo "[engines] not root or no apt-get: SLURM not installed, its tests will skip"
fi

t0=$SECONDS
"$PY" -m pip install -q "ray==2.60.0" "submitit>=1.5"
echo "[engines] pip install ray==2.60.0 submitit: $((SECONDS - t0))s"

echo "[engines] RAGLINE_ENGINES=1 pytest -m engines tests/executors"
RAGLINE_ENGINES=1 "$PY" -m pytest -q -ra -m engines tests/executors

# the Ray tests of the default markers: the README's run has no ray installed (they skip there)
echo "[engines] pytest tests/executors/test_ray*.py tests/executors/test_gpus.py (with ray)"
"$PY" -m pytest -q -ra tests/executors/test_ray*.py tests/executors/test_gpus.py
