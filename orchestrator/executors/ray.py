"""The Ray executor: shards as Ray tasks, a multi-GPU step as one gang in a placement group.

Chosen with ``executor=ray`` (conf/executor/ray.yaml). ``ragline.executor.address`` picks the cluster:
``local`` (default) starts a private one for this run with ``ray.init(address="local")``, never
joining a cluster by accident through a stale ``/tmp/ray/ray_current_cluster``; ``auto`` attaches
to the cluster started on this machine with ``ray start``; ``HOST:PORT`` or ``ray://HOST:10001``
attaches to a remote head. With token authentication (Ray 2.60's ``RAY_AUTH_MODE=token``) the
driver needs the cluster's token (``~/.ray/auth_token`` or ``RAY_AUTH_TOKEN``).

Each shard is a Ray task with ``num_cpus: cpus_per_task`` and ``num_gpus: step.gpus``;
Ray sets ``CUDA_VISIBLE_DEVICES`` and the task starts the same ``orchestrator.worker`` process
as the local executor, so locking, caching and single flight are unchanged. A step with
``gpus > 1`` and one shard is a gang: a placement group with one bundle per node (STRICT_PACK on
one node, STRICT_SPREAD over several when it asks for more GPUs than a node has), one launcher
task per bundle running torchrun (``orchestrator.executors.launch``); rank 0 commits (a stage
declared with ``multi_gpu="one_process"`` is one task that sees all the step's GPUs instead). A
placement group keeps one launch path (the worker under torchrun) for every executor; Ray Train's
TorchTrainer would run the step as a Ray Train loop with its own checkpointing, a second code path
for the same training stages.

The cache directory must be on a filesystem every node sees: at start a probe task on each node
looks for a file the driver just wrote there, and the run stops with one line naming the node
that does not see it.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.executors.base import Failed, TaskResult, read_result
from orchestrator.executors.gpus import check_node_gpus, runs_as_ranks
from orchestrator.executors.launch import (FORWARD_ENV, forwarded_env, read_env,
                                          remove_task_files, step_env_names, write_task_files)

log = logging.getLogger("ragline")


def _import_ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError("executor=ray needs Ray, which is not installed",
                          hint="pip install -e '.[ray]'") from None
    return ray


def _run_shard(task_file: str, log_path: str, env: dict, cwd: str,
               defaults: dict | None = None) -> int:
    """Body of a shard's Ray task, on a worker node: the worker process, same as local."""
    from orchestrator.executors.launch import run_worker, worker_argv

    return run_worker(worker_argv(task_file), log_path, env, cwd, defaults=defaults)


def _node_address() -> tuple[str, int]:
    """This node's IP and a free port on it: the gang's rendezvous point (runs in bundle 0)."""
    import socket

    import ray

    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    return ray.util.get_node_ip_address(), port


def _run_rank_group(task_file: str, log_path: str, env: dict, cwd: str, nnodes: int,
                    node_rank: int, nproc: int, master: str, port: int,
                    defaults: dict | None = None) -> int:
    """Body of one node's launcher task of a gang: torchrun with ``nproc`` ranks on this node."""
    from orchestrator.executors.launch import run_worker, torchrun_argv

    argv = torchrun_argv(task_file, nnodes, node_rank, nproc, master, port)
    return run_worker(argv, log_path, env, cwd, defaults=defaults)


def _sees(path: str, token: str) -> tuple[str, bool]:
    import ray

    probe = Path(path) / token
    return ray.util.get_node_ip_address(), probe.is_file()


def blind_nodes(seen: list[tuple[str, bool]]) -> list[str]:
    """Nodes that did not find the driver's probe file in the cache directory.

    >>> blind_nodes([("10.0.0.1", True), ("10.0.0.2", False)])
    ['10.0.0.2']
    """
    return [ip for ip, ok in seen if not ok]


def gang_shape(gpus: int, per_node: list[int]) -> list[int]:
    """GPUs per bundle for a multi-GPU step: one bundle if a node has enough, else equal bundles of
    the largest node's size over several nodes.

    >>> gang_shape(2, [2, 2]), gang_shape(8, [4, 4, 4]), gang_shape(6, [4, 4])
    ([2], [4, 4], [3, 3])
    """
    biggest = max(per_node, default=0)
    if gpus <= biggest:
        return [gpus]
    for size in range(biggest, 0, -1):
        n = -(-gpus // size)
        if gpus % size == 0 and sum(1 for g in per_node if g >= size) >= n:
            return [size] * n
    raise ConfigError(f"{gpus} GPUs cannot be split into equal groups over the cluster's nodes "
                      f"(GPUs per node: {per_node})")


def _too_many_gpus(step, per_node: list[int]) -> ConfigError:
    return ConfigError(f"steps.{step.name}.gpus: {step.gpus} GPU(s) per shard asked for, but no Ray "
                       f"node has that many (GPUs per node: {per_node})",
                       hint=f"lower steps.{step.name}.gpus or add GPU nodes")


class RayExecutor:
    name = "ray"
    connects = True  # check_resources attaches to (or starts) the cluster: rag plan leaves it out

    def __init__(self, store, cfg: dict, jobs: int = 0):
        import importlib.util

        if importlib.util.find_spec("ray") is None:  # fail before anything runs
            _import_ray()
        self.store = store
        self.address = str(cfg.get("address") or "local")
        self.num_cpus = cfg.get("num_cpus")
        self.num_gpus = cfg.get("num_gpus")
        self.cpus_per_task = float(cfg.get("cpus_per_task") or 1)
        self.env_patterns = [*FORWARD_ENV, *(cfg.get("env") or [])]
        self.jobs: dict[str, str] = {}
        self._ray = None
        self._refs: list = []
        self._groups: list = []
        self._seen_dirs: set[Path] = set()

    # -- cluster -------------------------------------------------------------------------------
    def connect(self):
        """Attach to (or start) the cluster once per run and check that it sees the cache."""
        if self._ray is not None:
            return self._ray
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs = dict(logging_level=logging.WARNING, log_to_driver=False)
            if self.address == "local":
                kwargs.update(include_dashboard=False, num_cpus=self.num_cpus, num_gpus=self.num_gpus)
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError) as e:
                raise ConfigError(f"ragline.executor.address: cannot use the Ray cluster at "
                                  f"'{self.address}': {str(e).strip().splitlines()[0]}",
                                  hint="start one (ray start --head) or use ragline.executor.address="
                                       "local; with token auth the driver needs the cluster's token "
                                       "(~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
        self._ray = ray
        self._check_shared_cache()
        return ray

    def _check_shared_cache(self) -> None:
        self.check_visible(self.store.root / "tmp", "cache directory", "RAGLINE_CACHE")

    def check_visible(self, probe_dir: Path, what: str, setting: str) -> None:
        """Every node must see ``probe_dir``: a probe file written here, looked for there."""
        if probe_dir in self._seen_dirs:
            return
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe_dir.mkdir(parents=True, exist_ok=True)
        token = f".ray-probe-{uuid.uuid4().hex}"
        (probe_dir / token).write_text("")
        try:
            sees = ray.remote(num_cpus=0)(_sees)
            refs = [sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                        n["NodeID"], soft=False)).remote(str(probe_dir), token)
                    for n in ray.nodes() if n.get("Alive")]
            blind = blind_nodes(ray.get(refs, timeout=300))
        finally:
            (probe_dir / token).unlink(missing_ok=True)
        if blind:
            raise ConfigError(f"ragline.executor: Ray node(s) {', '.join(blind)} cannot see the {what} "
                              f"{probe_dir.parent if what == 'cache directory' else probe_dir}; the Ray "
                              "executor needs it on a filesystem shared by every node",
                              hint=f"set {setting} to a path mounted on all nodes")
        self._seen_dirs.add(probe_dir)

    def gpus_per_node(self) -> list[int]:
        return [int(n["Resources"].get("GPU", 0)) for n in self.connect().nodes() if n.get("Alive")]

    def check_resources(self, steps: list) -> None:
        """GPU steps against the cluster's nodes, not this machine's devices."""
        check_node_gpus(steps, self.gpus_per_node, gang_shape, _too_many_gpus)

    # -- running -------------------------------------------------------------------------------
    def run(self, step, tasks: list) -> dict[str, TaskResult]:
        ray = self.connect()
        self.check_visible(Path(tasks[0].log).parent, "run's log directory", "--runs-dir")
        # what the step reads from the environment goes too (a node started elsewhere lacks
        # it): the driver's value, which the cache key holds; a node-local one only if missing
        driver, defaults = read_env(step_env_names(step))
        env, cwd = {**forwarded_env(self.env_patterns), **driver}, os.getcwd()
        if not step.gpus:  # a task without GPUs must not see the node's
            env["CUDA_VISIBLE_DEVICES"] = ""
        files = write_task_files(tasks)
        try:
            if runs_as_ranks(step):
                t = tasks[0]
                refs = {t.key: self._launch_gang(step, t, str(files[t.key]), env, cwd, defaults)}
            else:
                remote = ray.remote(num_cpus=self.cpus_per_task, num_gpus=step.gpus,
                                    max_retries=0)(_run_shard)
                refs = {t.key: [remote.options(name=f"ragline:{t.label}").remote(
                            str(files[t.key]), t.log, env, cwd, defaults)] for t in tasks}
            self._refs = [r for rs in refs.values() for r in rs]
            for key, rs in refs.items():
                self.jobs[key] = ",".join(r.task_id().hex() for r in rs)
            return {t.key: self._result(t, refs[t.key], files[t.key]) for t in tasks}
        except KeyboardInterrupt:
            self.cancel()
            raise
        finally:
            self._refs = []
            self._release_groups()
            remove_task_files(files)

    def _result(self, task, refs: list, task_file: Path) -> TaskResult:
        ray = self._ray
        try:
            code = max(ray.get(refs))
        except ray.exceptions.RayError as e:
            result = read_result(Path(f"{task_file}.result"), 1, task.log, "ray task")
            if isinstance(result, Failed) and "without a result" in result.message:
                line = str(e).strip().splitlines()[0]
                return Failed(f"ray task {self.jobs[task.key][:16]} failed: {line}", task.log)
            return result
        return read_result(Path(f"{task_file}.result"), code, task.log, "ray task")

    def _launch_gang(self, step, task, task_file: str, env: dict, cwd: str,
                     defaults: dict) -> list:
        ray = self._ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        sizes = gang_shape(step.gpus, self.gpus_per_node())
        bundles = [{"GPU": g, "CPU": self.cpus_per_task} for g in sizes]
        pg = placement_group(bundles, strategy="STRICT_PACK" if len(sizes) == 1 else "STRICT_SPREAD",
                             name=f"ragline-{step.name}")
        self._groups.append(pg)
        ray.get(pg.ready())

        def in_bundle(i, **res):
            strategy = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)
            return dict(scheduling_strategy=strategy, **res)

        master, port = ray.get(ray.remote(_node_address).options(**in_bundle(0, num_cpus=0)).remote())
        launcher = ray.remote(max_retries=0)(_run_rank_group)
        return [launcher.options(name=f"ragline:{task.label}:node{i}",
                                 **in_bundle(i, num_cpus=self.cpus_per_task, num_gpus=g)).remote(
                    task_file, task.log, env, cwd, len(sizes), i, g, master, port, defaults)
                for i, g in enumerate(sizes)]

    def _release_groups(self) -> None:
        if not self._groups:
            return
        from ray.util.placement_group import remove_placement_group

        for pg in self._groups:
            remove_placement_group(pg)
        self._groups = []

    def cancel(self) -> None:
        """Ctrl-C or SIGTERM: kill this run's Ray tasks (their workers die with them)."""
        if self._ray is None:
            return
        for ref in self._refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone
                pass
