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
that does not see it (or cannot import ragline: ragline and the recipe's stage modules must be
importable on every node). A task no alive node can hold (``cpus_per_task`` above every node's
CPUs, a gang whose bundles fit no node) is refused before anything runs: Ray would keep it
pending forever, and with ``log_to_driver=False`` its warning never reaches the terminal. While
none of a step's tasks has started, a "waiting for resources" line is logged now and then.

SIGTERM: ``ray.init`` installs Ray's own handler (a crash banner, then the process dies), so the
one ``rag run`` had is put back, and the ``KeyboardInterrupt`` Ray raises in its place inside
``ray.get`` is raised again as what that handler raised (``Terminated``: exit 143). A SIGTERM
while ``ray.init`` runs meets Ray's handlers, which raise ``SystemExit``: what it started is
stopped and the run ends as terminated too, not with a silent exit 15.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.executors.base import Failed, TaskResult, read_result, report_submitted
from orchestrator.executors.gpus import check_node_gpus, runs_as_ranks
from orchestrator.executors.launch import (FORWARD_ENV, forwarded_env, read_env,
                                          remove_task_files, step_env_names, write_task_files)

log = logging.getLogger("ragline")

POLL_S = 10.0          # how often the driver looks at tasks that have not ended
NOTE_AFTER_S = 60.0    # nothing started for this long: a "waiting for resources" line,
NOTE_EVERY_S = 300.0   # then one this often, while still nothing has started
IMPORT_HINT = ("ragline and the recipe's stage modules must be importable on every Ray node: "
               "install ragline (pip install -e .) in the nodes' Python, or start them (ray "
               "start) with PYTHONPATH naming the project")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_raised: list[BaseException] = []  # what the SIGTERM handler raised last (see _signal_exception)


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


def error_words(e: BaseException) -> str:
    """One line for a Ray error: the task's own exception (a ``RayTaskError``'s ``cause``), not
    Ray's ``ray::fn() (pid=..., ip=...)`` banner; colour codes stripped. A cause that carries a
    traceback (a function that failed to import on the worker) is its last line.

    >>> class RayTaskError(Exception):
    ...     cause = ValueError("bad shard")
    >>> error_words(RayTaskError("\\x1b[36mray::_run_shard()\\x1b[39m (pid=7, ip=10.0.0.2)"))
    'ValueError: bad shard'
    >>> error_words(RuntimeError("failed to import:\\n\\nTraceback (most recent call last):\\n"
    ...                          "  File x\\nImportError: no module named 'orchestrator'\\n"))
    "ImportError: no module named 'orchestrator'"
    """
    while isinstance(getattr(e, "cause", None), BaseException):
        e = e.cause
    lines = [line.strip() for line in _ANSI.sub("", str(e)).splitlines() if line.strip()]
    if "Traceback (most recent call last):" in lines[:-1]:
        return lines[-1]
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def nodes_fitting(cpus: float, gpus: int, nodes: list[tuple[float, int]]) -> int:
    """How many nodes, given as (CPUs, GPUs), can each hold one task asking for both.

    >>> nodes_fitting(2, 1, [(4.0, 0), (2.0, 2), (1.0, 8)]), nodes_fitting(1, 0, [(4.0, 0)])
    (1, 1)
    """
    return sum(1 for c, g in nodes if c >= cpus and g >= gpus)


def free_words(free: dict, total: dict) -> str:
    """A cluster's free CPUs and GPUs (``ray.available_resources()`` leaves out those at 0).

    >>> free_words({"CPU": 1.0}, {"CPU": 2.0, "GPU": 2.0})
    '1/2 CPU, 0/2 GPU'
    """
    return ", ".join(f"{free.get(r, 0):g}/{total.get(r, 0):g} {r}" for r in ("CPU", "GPU"))


def _nodes_words(nodes: list[tuple[float, int]]) -> str:
    """Nodes given as (CPUs, GPUs), for a message.

    >>> _nodes_words([(4.0, 0), (1.0, 2)])
    '4 CPU + 0 GPU, 1 CPU + 2 GPU'
    """
    return ", ".join(f"{c:g} CPU + {g} GPU" for c, g in nodes)


def waiting_words(n: int, cpus: float, gpus: int, free: dict, total: dict) -> str:
    """The line logged while none of a step's ``n`` Ray tasks has started.

    >>> waiting_words(4, 4.0, 0, {"CPU": 1.0}, {"CPU": 2.0, "GPU": 2.0})
    'waiting for resources: 4 tasks not started (each asks 4 CPU, 0 GPU; free: 1/2 CPU, 0/2 GPU)'
    """
    return (f"waiting for resources: {n} task{'s' * (n != 1)} not started (each asks "
            f"{cpus:g} CPU, {gpus:g} GPU; free: {free_words(free, total)})")


def _stop_starting_cluster(ray) -> None:
    """Stop what an interrupted ``ray.init`` started (a private cluster's processes), now: they
    would outlive ``rag run`` for a minute or more. ``ray.shutdown`` stops the processes the
    driver started itself; the agents its raylet had started (dashboard, runtime env) outlived
    it by 60-90 s, so every process started under this one is stopped after it."""
    started = _descendants()
    try:
        ray.shutdown()
    except Exception as e:   # noqa: BLE001 - stopping anyway; the signal is what to report
        log.debug("ray.shutdown after an interrupted ray.init: %s", e)
    _stop(started)


def _descendants() -> list:
    """This process' children and theirs (psutil: installed with accelerate/TRL), or []."""
    try:
        import psutil

        return psutil.Process().children(recursive=True)
    except Exception:   # noqa: BLE001 - no psutil, or a process gone meanwhile
        return []


def _stop(processes: list, grace_s: float = 3.0) -> None:
    """SIGTERM to those of ``processes`` still running (the same process: psutil checks its
    start time), then SIGKILL to any left after ``grace_s``."""
    if not processes:
        return
    import psutil

    alive = [p for p in processes if p.is_running()]
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, left = psutil.wait_procs(alive, timeout=grace_s)
    for p in left:
        with contextlib.suppress(psutil.Error):
            p.kill()


def _keep_handler(handler):
    """``handler`` wrapped to remember what it raised: Ray's ``ray.get`` swallows it and raises
    a plain ``KeyboardInterrupt`` instead."""
    def remembering(signum, frame):
        try:
            handler(signum, frame)
        except BaseException as e:
            _raised[:] = [e]
            raise
    return remembering


def _signal_exception(e: KeyboardInterrupt) -> BaseException:
    """What to raise for ``e``: what the SIGTERM handler raised (rag run's ``Terminated``), as
    Ray turns it into a plain ``KeyboardInterrupt``; else ``e`` itself (Ctrl-C).

    >>> _raised[:] = []; isinstance(_signal_exception(KeyboardInterrupt()), KeyboardInterrupt)
    True
    """
    held = _raised.pop() if _raised else None
    return held if held is not None else e


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
        self.autoscaling = bool(cfg.get("autoscaling"))
        self.env_patterns = [*FORWARD_ENV, *(cfg.get("env") or [])]
        self.jobs: dict[str, str] = {}
        self.on_submitted = None   # the runner's: job ids to status.json (report_submitted)
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
            handler = signal.getsignal(signal.SIGTERM)
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError) as e:
                raise ConfigError(f"ragline.executor.address: cannot use the Ray cluster at "
                                  f"'{self.address}': {str(e).strip().splitlines()[0]}",
                                  hint="start one (ray start --head) or use ragline.executor.address="
                                       "local; with token auth the driver needs the cluster's token "
                                       "(~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
            except (SystemExit, KeyboardInterrupt) as stop:
                _stop_starting_cluster(ray)
                # a SIGTERM while ray.init ran met Ray's handlers (installed first thing there),
                # which raise SystemExit (its only sys.exit on a driver): end as rag run's
                # handler does, with its message and exit 143, not a silent exit 15
                if isinstance(stop, SystemExit) and callable(handler):
                    log.warning("SIGTERM while the Ray cluster was starting: stopped it")
                    handler(signal.SIGTERM, None)
                raise
            # Ray's core worker replaced the handler with one that prints a crash banner and
            # kills the driver: put back the one that stops the run (rag run: exit 143)
            if callable(handler) and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, _keep_handler(handler))
        self._ray = ray
        self._check_shared_cache()
        return ray

    def _check_shared_cache(self) -> None:
        self.check_visible(self.store.root / "tmp", "cache directory", "RAGLINE_CACHE")

    def check_visible(self, probe_dir: Path, what: str, setting: str) -> None:
        """Every node must see ``probe_dir``: a probe file written here, looked for there."""
        if probe_dir in self._seen_dirs:
            return
        _raised.clear()   # what an earlier run's SIGTERM raised is no signal to this wait
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe_dir.mkdir(parents=True, exist_ok=True)
        token = f".ray-probe-{uuid.uuid4().hex}"
        (probe_dir / token).write_text("")
        try:
            sees = ray.remote(num_cpus=0)(_sees)
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            refs = [sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                        n["NodeID"], soft=False)).remote(str(probe_dir), token) for n in nodes]
            blind = blind_nodes([self._probed(n, ref) for n, ref in zip(nodes, refs)])
        except KeyboardInterrupt as e:
            raise _signal_exception(e) from None
        finally:
            (probe_dir / token).unlink(missing_ok=True)
        if blind:
            raise ConfigError(f"ragline.executor: Ray node(s) {', '.join(blind)} cannot see the {what} "
                              f"{probe_dir.parent if what == 'cache directory' else probe_dir}; the Ray "
                              "executor needs it on a filesystem shared by every node",
                              hint=f"set {setting} to a path mounted on all nodes")
        self._seen_dirs.add(probe_dir)

    def _probed(self, node: dict, ref) -> tuple[str, bool]:
        """A probe task's answer; a node whose Python cannot import ragline is a ConfigError."""
        ray = self._ray
        try:
            return ray.get(ref, timeout=300)
        except ray.exceptions.GetTimeoutError:
            raise
        except ray.exceptions.RayError as e:
            raise ConfigError(f"ragline.executor: Ray node {node.get('NodeManagerAddress')} "
                              f"cannot run ragline: {error_words(e)}", hint=IMPORT_HINT) from None

    def node_resources(self) -> list[tuple[float, int]]:
        """(CPUs, GPUs) of each alive node of the cluster."""
        return [(float(n["Resources"].get("CPU", 0)), int(n["Resources"].get("GPU", 0)))
                for n in self.connect().nodes() if n.get("Alive")]

    def gpus_per_node(self) -> list[int]:
        return [g for _, g in self.node_resources()]

    def check_resources(self, steps: list) -> None:
        """The steps' tasks against the cluster's alive nodes, not this machine's devices: GPUs,
        then ``cpus_per_task`` (with the GPUs, on one node): Ray would wait forever for a task
        that no node can hold. A cluster that adds nodes on demand (``autoscaling: true``) may
        not have them yet: there a task no alive node holds is a warning, and it waits."""
        try:
            self.check_alive_nodes(steps)
        except ConfigError as e:
            if not self.autoscaling:
                raise
            log.warning("%s; going on, as ragline.executor.autoscaling is true: the tasks wait "
                        "until the autoscaler adds such a node", e.message)

    def check_alive_nodes(self, steps: list) -> None:
        """``check_resources`` against the nodes alive now; ConfigError for the first misfit."""
        check_node_gpus(steps, self.gpus_per_node, gang_shape, _too_many_gpus)
        if not steps:
            return
        nodes, cpus = self.node_resources(), self.cpus_per_task
        biggest = max((c for c, _ in nodes), default=0.0)
        if cpus > biggest:
            raise ConfigError(f"ragline.executor.cpus_per_task: {cpus:g} CPUs per Ray task asked "
                              f"for, but the largest Ray node has {biggest:g} (CPUs per node: "
                              f"{', '.join(f'{c:g}' for c, _ in nodes)})",
                              hint=f"set ragline.executor.cpus_per_task={biggest:g} or less, or "
                                   "add a node with more CPUs")
        for step in (s for s in steps if s.gpus):
            sizes = gang_shape(step.gpus, [g for _, g in nodes]) if runs_as_ranks(step) else [
                step.gpus]
            n = len(sizes)
            if nodes_fitting(cpus, sizes[0], nodes) < n:
                # the CPUs of the n-th largest node with the GPUs (check_node_gpus: n exist)
                room = sorted((c for c, g in nodes if g >= sizes[0]), reverse=True)[n - 1]
                raise ConfigError(f"steps.{step.name}: {sizes[0]} GPU(s) and {cpus:g} CPU(s) "
                                  "(ragline.executor.cpus_per_task) wanted on "
                                  f"{'one node' if n == 1 else f'each of {n} nodes'}, but "
                                  f"{'no' if n == 1 else f'fewer than {n}'} Ray nodes have both "
                                  f"(nodes: {_nodes_words(nodes)})",
                                  hint=f"set ragline.executor.cpus_per_task={room:g} or less, or "
                                       "add nodes with both")

    # -- running -------------------------------------------------------------------------------
    def run(self, step, tasks: list) -> dict[str, TaskResult]:
        _raised.clear()   # a SIGTERM met outside a wait has been raised as itself already
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
            # into the run record now, not when the step ends: a killed driver's tasks are named
            report_submitted(self, {key: ",".join(r.task_id().hex() for r in rs)
                                    for key, rs in refs.items()})
            self._wait(self._refs, lambda: self._not_started(step, tasks))
            return {t.key: self._result(t, refs[t.key], files[t.key]) for t in tasks}
        except KeyboardInterrupt as e:
            self.cancel()
            raise _signal_exception(e) from None
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
                words = error_words(e)
                # the task's function could not be unpickled there: the node's ragline
                broken = ("failed to import on the worker" in str(e)
                          or words.startswith(("ImportError", "ModuleNotFoundError")))
                return Failed(f"ray task {self.jobs[task.key][:16]} failed: {words}", task.log,
                              bad_input=broken, hint=IMPORT_HINT if broken else "")
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
        self._wait([pg.ready()], lambda: f"{step.name}: waiting for resources: its gang of "
                   f"{len(sizes)} bundle(s) of {sizes[0]} GPU + {self.cpus_per_task:g} CPU is "
                   f"not placed yet (free: {self._free()})")

        def in_bundle(i, **res):
            strategy = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)
            return dict(scheduling_strategy=strategy, **res)

        master, port = ray.get(ray.remote(_node_address).options(**in_bundle(0, num_cpus=0)).remote())
        launcher = ray.remote(max_retries=0)(_run_rank_group)
        return [launcher.options(name=f"ragline:{task.label}:node{i}",
                                 **in_bundle(i, num_cpus=self.cpus_per_task, num_gpus=g)).remote(
                    task_file, task.log, env, cwd, len(sizes), i, g, master, port, defaults)
                for i, g in enumerate(sizes)]

    def _wait(self, refs: list, note) -> None:
        """Until every ref is ready; ``note()`` (a line, or None) is logged after NOTE_AFTER_S,
        then every NOTE_EVERY_S: a task no node can hold would otherwise wait in silence."""
        ray, pending = self._ray, list(refs)
        due = time.monotonic() + NOTE_AFTER_S
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
            if pending and time.monotonic() >= due:
                line = note()
                if line:
                    log.warning(line)
                due = time.monotonic() + NOTE_EVERY_S

    def _not_started(self, step, tasks: list) -> str | None:
        """The waiting line while no task of the step has started (none has opened its log)."""
        if any(Path(t.log).exists() for t in tasks):
            return None
        ray = self._ray
        words = waiting_words(len(tasks), self.cpus_per_task, step.gpus,
                              ray.available_resources(), ray.cluster_resources())
        return f"{step.name}: {words}"

    def _free(self) -> str:
        return free_words(self._ray.available_resources(), self._ray.cluster_resources())

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
