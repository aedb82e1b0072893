"""The local executor: one worker process per shard, GPUs handed out through CUDA_VISIBLE_DEVICES.

Eight shards on eight GPUs with ``gpus: 1`` run as eight workers, each seeing one device; with
``gpus: 2`` four run at a time on disjoint pairs. A step with ``gpus: N > 1`` and one shard is
launched under ``accelerate launch --num_processes N`` (data-parallel training; rank 0 commits).
On a machine without GPUs, shards run on CPU, ``max_parallel`` at a time (default: one per core),
with the cores split between them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.context import visible_gpus
from orchestrator.store import Store


def _free_port() -> int:
    """A free TCP port: two data-parallel steps at once must not both take accelerate's 29500."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalExecutor:
    def __init__(self, store: Store, settings: dict, jobs: int = 0):
        self.store = store
        self.isolate = settings.get("isolate", "auto")
        self.max_parallel = jobs or int(settings.get("max_parallel") or 0) or (os.cpu_count() or 1)

    def in_process(self, step, tasks) -> bool:
        if self.isolate == "always":
            return False
        if self.isolate == "never":
            return step.gpus == 0
        return step.gpus == 0 and step.shards == 1

    def slots(self, step) -> list[list[int]]:
        """Disjoint GPU sets, one per concurrently running shard; CPU: ``max_parallel`` empty sets."""
        if step.gpus == 0:
            return [[] for _ in range(max(1, min(self.max_parallel, step.shards)))]
        gpus = visible_gpus()
        g = step.gpus
        return [gpus[i * g:(i + 1) * g] for i in range(len(gpus) // g)]

    def command(self, step, task_file: Path) -> list[str]:
        if step.gpus > 1 and step.shards == 1:
            return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes",
                    str(step.gpus), "--main_process_port", str(_free_port()),
                    "-m", "orchestrator.worker", str(task_file)]
        return [sys.executable, "-m", "orchestrator.worker", str(task_file)]

    def run_workers(self, step, tasks, make_failure) -> dict[str, object]:
        slots = self.slots(step)
        threads = max(1, (os.cpu_count() or 1) // len(slots)) if step.gpus == 0 else None
        queue = list(tasks)
        running: dict[int, tuple] = {}  # slot index -> (proc, task, task_file)
        out: dict[str, object] = {}
        task_dir = self.store.root / "tmp" / "tasks"
        task_dir.mkdir(parents=True, exist_ok=True)
        try:
            while queue or running:
                for i, gpus in enumerate(slots):
                    if i in running or not queue:
                        continue
                    task = queue.pop(0)
                    task.gpus = gpus
                    task_file = task_dir / f"{task.key}.{os.getpid()}.json"
                    task_file.write_text(json.dumps(task.to_json()))
                    env = dict(os.environ)
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
                    if threads:
                        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
                    Path(task.log).parent.mkdir(parents=True, exist_ok=True)
                    logf = open(task.log, "ab")
                    proc = subprocess.Popen(self.command(step, task_file), stdout=logf,
                                            stderr=subprocess.STDOUT, env=env)
                    logf.close()
                    running[i] = (proc, task, task_file)
                time.sleep(0.05)
                for i, (proc, task, task_file) in list(running.items()):
                    if proc.poll() is None:
                        continue
                    del running[i]
                    err = Path(f"{task_file}.error")
                    if proc.returncode == 0:
                        out[task.key] = "done"
                    else:
                        msg = err.read_text() if err.is_file() else \
                            f"worker exited with code {proc.returncode}"
                        out[task.key] = make_failure(task, msg)
                    err.unlink(missing_ok=True)
                    task_file.unlink(missing_ok=True)
        except KeyboardInterrupt:
            for proc, _, _ in running.values():
                proc.terminate()
            raise
        return out
