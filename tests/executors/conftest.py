"""Fixtures of the executor conformance suite: the real engines, and the conformance recipe.

The Ray and SLURM cases need real clusters (tests/engines/ray.sh, tests/engines/slurm.sh). A
cluster that is already running is used as it is. Otherwise, with ``RAGLINE_ENGINES=1`` the
session starts it and stops it at the end (by PID); without, the case is skipped with the command
that starts it. Those cases are marked ``engines`` (not in the default ``pytest`` run; CI runs
``.ci/engines.sh``, which installs the engines and runs ``pytest -m engines tests/executors``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINES = REPO / "tests" / "engines"
START_HINT = "or set RAGLINE_ENGINES=1 to let the suite start and stop it"


def _slurm_up() -> bool:
    if not shutil.which("scontrol"):
        return False
    r = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return r.returncode == 0 and "UP" in r.stdout


def _ray_up() -> bool:
    r = subprocess.run([str(ENGINES / "ray.sh"), "status"], capture_output=True, text=True,
                       env={**os.environ, "RAY_PY": sys.executable}, timeout=30)
    return "running" in r.stdout


def _engine(name: str, up, script: str, needs: str, env: dict):
    """Yield while the engine runs: reuse a running one, else start/stop it under RAGLINE_ENGINES=1."""
    if up():
        yield
        return
    if os.environ.get("RAGLINE_ENGINES") != "1":
        pytest.skip(f"no {name} cluster running: start one with `{script} start`, {START_HINT}")
    if shutil.which(needs) is None and not (needs == "ray" and _has_ray()):
        pytest.skip(f"{name} is not installed: run .ci/engines.sh")
    t0 = time.time()
    r = subprocess.run([str(REPO / script), "start"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, **env})
    if r.returncode != 0:
        pytest.fail(f"{script} start failed:\n{r.stderr[-2000:]}")
    print(f"\n[{name} started in {time.time() - t0:.1f}s]")
    try:
        yield
    finally:
        subprocess.run([str(REPO / script), "stop"], capture_output=True, timeout=300,
                       env={**os.environ, **env})


def _has_ray() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


@pytest.fixture(scope="session")
def slurm_cluster():
    yield from _engine("SLURM", _slurm_up, "tests/engines/slurm.sh", "slurmctld", {})


@pytest.fixture(scope="session")
def ray_cluster():
    if not _has_ray():
        pytest.skip("ray is not installed: pip install 'ragline[ray]' (or run .ci/engines.sh)")
    yield from _engine("Ray", _ray_up, "tests/engines/ray.sh", "ray", {"RAY_PY": sys.executable})


# -- the conformance recipe, run through the CLI as a separate process (kills, races) ---------------

# executor -> (overrides, environment changes). Local gets two fake GPUs through the environment
# (and FAKE_DRIVER below); Ray and SLURM submit from a "login node" with none: their GPUs are the
# cluster's (fake ones too: ray start --num-gpus 2, SLURM gres on /dev/null clones).
EXECUTORS = {
    "local": (["executor=local"], {"CUDA_VISIBLE_DEVICES": "0,1"}),
    "ray": (["executor=ray", "ragline.executor.address=auto"], {"CUDA_VISIBLE_DEVICES": None}),
    "slurm": (["executor=slurm", "ragline.executor.time=10", "ragline.executor.cpus_per_task=1",
               "ragline.executor.mem_gb=1", "ragline.executor.heartbeat_s=8"], {"CUDA_VISIBLE_DEVICES": None}),
}


# The rag CLI for the local executor on a machine without an NVIDIA driver: CUDA_VISIBLE_DEVICES
# counts only where a driver exists (orchestrator/executors/gpus.py), so the driver check is faked
# in the runner's process, as tests/test_gpu_assignment.py does in-process.
FAKE_DRIVER = ("import sys, orchestrator.executors.gpus as g; g.gpu_driver_present = lambda: True; "
               "from orchestrator.cli import main; sys.exit(main(sys.argv[1:]))")


def executor_params():
    return [pytest.param("local", id="local"),
            pytest.param("ray", id="ray", marks=pytest.mark.engines),
            pytest.param("slurm", id="slurm", marks=pytest.mark.engines)]


class Conformance:
    """A copy of tests/executors/conf/conformance.yaml with the repository's conf/executor group,
    a cache, a runs dir and a trace file, in a temporary directory."""

    def __init__(self, root: Path, executor: str):
        self.root, self.executor = root, executor
        self.recipe = root / "conf" / "conformance.yaml"
        shutil.copytree(REPO / "tests" / "executors" / "conf", root / "conf")
        shutil.copytree(REPO / "conf" / "executor", root / "conf" / "executor", dirs_exist_ok=True)
        self.cache, self.runs = root / "cache", root / "runs"
        self.trace, self.fail_file = root / "trace.jsonl", root / "fail.txt"

    def env(self, executor: str | None = None) -> dict:
        env = {**os.environ, "PYTHONPATH": str(REPO), "RAGLINE_CACHE": str(self.cache)}
        for k, v in EXECUTORS[executor or self.executor][1].items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def argv(self, *extra: str, executor: str | None = None, runs: Path | None = None) -> list[str]:
        cli = ["-c", FAKE_DRIVER] if (executor or self.executor) == "local" else ["-m", "orchestrator"]
        return [sys.executable, *cli, "run", str(self.recipe),
                *EXECUTORS[executor or self.executor][0], f"trace={self.trace}",
                f"fail={self.fail_file}", *extra, "--runs-dir", str(runs or self.runs)]

    def start(self, *extra: str, executor: str | None = None, runs: Path | None = None):
        # SIGINT back to its default: a pytest started as a background job (`cmd &` in a
        # script) leaves it ignored for every child, and the Ctrl-C cases would hang
        return subprocess.Popen(self.argv(*extra, executor=executor, runs=runs), cwd=REPO,
                                env=self.env(executor), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def run(self, *extra: str, timeout: float = 300) -> tuple[int, str]:
        proc = self.start(*extra)
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out

    def traces(self) -> list[dict]:
        if not self.trace.exists():
            return []
        return [json.loads(line) for line in self.trace.read_text().splitlines() if line.strip()]

    def executions(self, step: str) -> dict[int, int]:
        """Rank-0 executions per shard of ``step``."""
        out: dict[int, int] = {}
        for t in self.traces():
            if t["step"] == step and (t["rank"] in (None, "0")):
                out[t["shard"]] = out.get(t["shard"], 0) + 1
        return out

    def status(self) -> dict:
        return json.loads((self.runs / "latest" / "status.json").read_text())


@pytest.fixture(params=executor_params())
def xc(request, tmp_path):
    """The conformance recipe on one executor (local, ray, slurm), its engine running."""
    name = request.param
    if name in ("ray", "slurm"):
        request.getfixturevalue(f"{name}_cluster")
    return Conformance(tmp_path, name)
