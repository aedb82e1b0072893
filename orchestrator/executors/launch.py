"""Starting a task's processes on a cluster node: one worker, or the ranks of a multi-GPU step.

Shared by the Ray and SLURM executors. Both run a small function *on the node* (a Ray task, a
SLURM job) that starts ``python -m orchestrator.worker TASK.json`` as the local executor does:

* ``torchrun_argv``: a multi-GPU step is one gang. On each of its nodes one launcher runs
  ``torchrun --nnodes N --node-rank R --nproc-per-node G --master-addr HOST --master-port P``
  (part of torch, no extra dependency). torchrun sets RANK, LOCAL_RANK, WORLD_SIZE and
  MASTER_ADDR for the Trainer, and the worker lets rank 0 alone commit the entry.
* ``write_task_files``: the driver hands each task to its node as ``LOG.task.json`` beside the
  task's log (on the shared filesystem); the worker writes its result to ``LOG.task.json.result``.
* ``run_worker``: the worker (or torchrun) as a child that dies with its parent
  (``PR_SET_PDEATHSIG``, so cancelling the Ray task or the SLURM job stops it), output appended
  to the task's log. With a heartbeat file, it is killed as soon as the driver stops touching the
  file, and not started at all if the driver is already gone: a driver killed with SIGKILL cannot
  cancel its jobs, but leaves no work running.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.executors.pdeathsig import bound_to_parent

HEARTBEAT_EVERY_S = 2.0
FORWARD_ENV = ("RAGLINE_*", "HF_*", "TRANSFORMERS_*", "TOKENIZERS_PARALLELISM", "PYTHONPATH")


def write_task_files(tasks: list) -> dict[str, Path]:
    """Task key -> ``LOG.task.json``, each task written beside its log for the worker on its node;
    a result file left by an earlier try is removed first."""
    files = {}
    for t in tasks:
        path = Path(t.log).with_suffix(".task.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(t.to_json()))
        Path(f"{path}.result").unlink(missing_ok=True)
        files[t.key] = path
    return files


def remove_task_files(files: dict[str, Path]) -> None:
    """The task files and their results, once the driver has read them (or given up)."""
    for path in files.values():
        for f in (path, Path(f"{path}.result")):
            f.unlink(missing_ok=True)


def torchrun_argv(task_file: str, nnodes: int, node_rank: int, nproc: int, master: str,
                  port: int) -> list[str]:
    """The launcher of one node of a multi-GPU step.

    >>> torchrun_argv("t.json", 2, 1, 4, "node1", 29400)[3:9]
    ['--nnodes', '2', '--node-rank', '1', '--nproc-per-node', '4']
    """
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes),
            "--node-rank", str(node_rank), "--nproc-per-node", str(nproc),
            "--master-addr", master, "--master-port", str(port),
            "-m", "orchestrator.worker", task_file]


def worker_argv(task_file: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.worker", task_file]


def forwarded_env(patterns=FORWARD_ENV, environ=None) -> dict[str, str]:
    """The driver's variables a worker on another node should see (names matching ``patterns``).

    >>> forwarded_env(["HF_*"], {"HF_HOME": "/h", "HOME": "/root"})
    {'HF_HOME': '/h'}
    """
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}


ENV_READ = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)")
# a node's own: a step reading one gets the node's value (a path under HOME, a TMPDIR), where
# any other variable it reads is the driver's value, the one its cache key holds
NODE_LOCAL = ("HOME", "PATH", "USER", "LOGNAME", "SHELL", "PWD", "TMPDIR", "HOSTNAME", "LANG",
              "LD_*", "CUDA_*", "SLURM_*")


def step_env_names(step) -> list[str]:
    """The variables a step reads: named in its config (``api_key_env``: ``needed_env``) or read
    by it (``${oc.env:NAME}``, which its worker resolves from its own environment). A worker on
    another node gets them from the driver, where ``rag run`` checked them.

    >>> from types import SimpleNamespace as S
    >>> step_env_names(S(env={"judge.api_key_env": "JUDGE_KEY"},
    ...                  secrets={"base_url": "http://${oc.env:HOST}:${oc.env:PORT}/v1"}))
    ['HOST', 'JUDGE_KEY', 'PORT']
    """
    names = set(step.env.values())
    for text in step.secrets.values():
        names.update(ENV_READ.findall(text))
    return sorted(names)


def read_env(reads: list[str], environ=None) -> tuple[dict[str, str], dict[str, str]]:
    """The driver's values of the variables a step reads (``step_env_names``), as (those to lay
    over a node's environment: the values its cache key holds, those to fill in only where a node
    lacks them: the node-local ones, :data:`NODE_LOCAL`).

    >>> read_env(["JUDGE_URL", "HOME", "UNSET"], {"JUDGE_URL": "http://j", "HOME": "/d"})
    ({'JUDGE_URL': 'http://j'}, {'HOME': '/d'})
    """
    local = [n for n in reads if any(fnmatch.fnmatchcase(n, p) for p in NODE_LOCAL)]
    return (forwarded_env([n for n in reads if n not in local], environ),
            forwarded_env(local, environ))


def heartbeat_stale(path: str | None, limit_s: float) -> bool:
    """True when the driver's heartbeat file is missing or older than ``limit_s`` seconds."""
    if not path:
        return False
    try:
        return time.time() - os.stat(path).st_mtime > limit_s
    except FileNotFoundError:
        return True


def run_worker(argv: list[str], log_path: str, env: dict, cwd: str | None = None,
               heartbeat: str | None = None, stale_s: float = 120.0,
               expected: list[str] = (), defaults: dict | None = None) -> int:
    """Run ``argv`` to completion on this node; its exit code, or 1 (and a line in the log) when
    the driver's heartbeat went stale. ``env`` is laid over this node's environment, which
    should hold the ``expected`` variables (a SLURM job's, sent by name only);
    ``defaults`` fill in the variables this node lacks (the node-local ones a step reads: a
    node's own HOME or PATH stays its own)."""
    if heartbeat_stale(heartbeat, stale_s):
        _note(log_path, f"the driver is gone (heartbeat {heartbeat} stale): not starting")
        return 1
    missing = [name for name in expected if name not in os.environ]
    if missing:
        _note(log_path, f"{', '.join(missing)} set where rag run ran but not in this job's "
              "environment (no value is written into job files; the cluster's sbatch does "
              "not export the submitter's environment? ragline.executor.sbatch: {export: ALL} "
              "asks it to): a stage that needs them fails")
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    cwd = cwd if cwd and Path(cwd).is_dir() else None
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(bound_to_parent(argv, signal.SIGKILL), stdout=log,
                                stderr=subprocess.STDOUT, cwd=cwd,
                                env={**(defaults or {}), **os.environ, **env})
    try:
        while True:
            try:
                return proc.wait(timeout=HEARTBEAT_EVERY_S)
            except subprocess.TimeoutExpired:
                if heartbeat_stale(heartbeat, stale_s):
                    _note(log_path, f"the driver is gone (heartbeat {heartbeat} stale): stopping")
                    _stop(proc)
                    return 1
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _note(log_path: str, text: str) -> None:
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as f:
        f.write(f"[ragline] {text}\n")
