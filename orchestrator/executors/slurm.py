"""The SLURM executor: shards as a job array, a multi-GPU step as one multi-task job, via submitit.

Chosen with ``executor=slurm`` (conf/executor/slurm.yaml); job settings are keys of the
``ragline.executor`` block (``rag run R executor=slurm ragline.executor.partition=gpu``):
``partition``, ``account``, ``qos``, ``constraint``, ``time`` (minutes, or SLURM's ``D-HH:MM:SS``),
``cpus_per_task``, ``mem_gb``, ``array_parallelism``, ``sbatch`` (any other sbatch flag,
``{exclude: node3}`` -> ``#SBATCH --exclude=node3``), ``setup`` (shell lines run first in the
job, e.g. ``module load cuda``) and ``cluster`` (``slurm``; ``local`` runs the jobs as local
processes, for a machine without SLURM).

* GPUs are checked against the partition (``sinfo`` gres of its nodes), never on the submitting
  machine: a login node without GPUs submits GPU steps.
* The shards of a step are one job array, ``gpus_per_node: step.gpus`` per array task; SLURM sets
  ``CUDA_VISIBLE_DEVICES``. Light steps (one shard, no GPU) run in the runner's process.
* A step with ``gpus > 1`` and one shard is one job on as many nodes as it needs
  (``--nodes N --ntasks-per-node 1 --gpus-per-node G``); each node's task runs torchrun with G
  ranks (``orchestrator.executors.launch``); rank 0 commits the entry. A stage declared with
  ``multi_gpu="one_process"`` (tensor-parallel inference) gets one job, one process, all G GPUs.
* Ctrl-C cancels the step's jobs (``scancel``), also when it comes while sbatch runs (the run
  waits for sbatch, ``_submit_waited``). A driver killed outright cannot cancel them, so
  every job watches a heartbeat file the driver touches every 2 s: a job whose driver is gone
  (heartbeat older than ``heartbeat_s``) kills its worker or does not start it.
* Before any step, the partition (each of a list, ``gpu,gpu-long``; ``sbatch: {partition: X}``
  when set) and ``cpus_per_task``/``mem_gb``/``time`` are checked against ``sinfo``; a job
  sbatch still refuses fails its step as bad input; a job pending for a reason SLURM never clears
  is cancelled; a job that dies outside the stage is named by its state, exit code and stderr.
  Job ids reach the run record at submission (``report_submitted``). With a list of
  partitions, a multi-node job must fit whole nodes of one of them (SLURM runs a job in a
  single partition), so each is counted on its own.
* SLURM warns a job ``SIGNAL_DELAY_S`` before its time limit (SIGUSR2): the worker is stopped
  like Ctrl-C (its stage's temporary output removed) and the step fails naming the job and
  ``ragline.executor.time`` (``spare_worker_the_warning``, ``time_limit_failure``).
* The job runs the same worker as the local executor, so locking, caching and single flight are
  unchanged; the cache directory must be on a filesystem every node shares.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from orchestrator.errors import ConfigError, did_you_mean
from orchestrator.executors.base import Failed, TaskResult, read_result, report_submitted
from orchestrator.executors.gpus import check_node_gpus, runs_as_ranks, visible_gpus
from orchestrator.executors.launch import (FORWARD_ENV, HEARTBEAT_EVERY_S, forwarded_env,
                                          remove_task_files, step_env_names,
                                          write_task_files)
from orchestrator.task import one_line

log = logging.getLogger("ragline")


def time_minutes(value) -> int:
    """SLURM's time formats (or plain minutes) in minutes; ValueError for anything else.

    >>> time_minutes(90), time_minutes("1-02:00:00"), time_minutes("45:00"), time_minutes("2:30:00")
    (90, 1560, 45, 150)
    >>> time_minutes("8h")
    Traceback (most recent call last):
    ValueError: '8h' is not minutes, MM:SS, HH:MM:SS or D-HH:MM:SS
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    text = str(value).strip()
    # D-HH, D-HH:MM, D-HH:MM:SS, MM, MM:SS, HH:MM:SS (sbatch --time); a typo (8h, 1:2:3:4) is
    # refused here rather than by sbatch, mid-run
    if not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", text) or isinstance(value, (bool, float)):
        raise ValueError(f"{value!r} is not minutes, MM:SS, HH:MM:SS or D-HH:MM:SS")
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if len(parts) == 3:
        h, m, s = parts
    elif len(parts) == 2:
        h, m, s = (parts[0], parts[1], 0) if days else (0, parts[0], parts[1])
    else:
        h, m, s = (parts[0], 0, 0) if days else (0, parts[0], 0)
    return int(days or 0) * 1440 + h * 60 + m + (1 if s else 0)


def job_time(cfg: dict):
    """A job's time limit as set (``time``, the older ``timeout_min``, else a day), unparsed:
    messages quote it as written.

    >>> job_time({"time": "2:00:00", "timeout_min": 30}), job_time({"timeout_min": 30})
    ('2:00:00', 30)
    >>> job_time({})
    1440
    """
    return cfg.get("time") or cfg.get("timeout_min") or 1440


def partition_setting(cfg: dict) -> tuple[str, str | None]:
    """(the setting, its value) that gives sbatch its partition: ``sbatch: {partition: X}``
    (or the older ``extra``) wins over ``partition``, as in the job script submitit writes.
    The value may list several partitions (``gpu,gpu-long``); None: the default partition.

    >>> partition_setting({"partition": "gpu"})
    ('ragline.executor.partition', 'gpu')
    >>> partition_setting({"partition": "gpu", "sbatch": {"partition": "long"}})
    ('ragline.executor.sbatch.partition', 'long')
    >>> partition_setting({})
    ('ragline.executor.partition', None)
    """
    for key in ("sbatch", "extra"):
        value = (cfg.get(key) or {}).get("partition")
        if value:
            return f"ragline.executor.{key}.partition", str(value)
    value = cfg.get("partition")
    return "ragline.executor.partition", str(value) if value else None


def listed(partition: str | None) -> list[str]:
    """The partitions of one ``--partition`` value (sbatch takes a comma-separated list).

    >>> listed("gpu, gpu-long"), listed(None)
    (['gpu', 'gpu-long'], [])
    """
    return [p.strip() for p in (partition or "").split(",") if p.strip()]


def gres_gpus(gres: str) -> int:
    """GPUs in one node's ``sinfo %G`` gres string.

    >>> gres_gpus("gpu:2"), gres_gpus("gpu:a100:4(S:0-1),shard:8"), gres_gpus("(null)")
    (2, 4, 0)
    """
    total = 0
    for item in re.split(r",(?![^()]*\))", gres):
        m = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if m:
            total += int(m.group(1))
    return total


SINFO_FORMAT = "%N|%G|%P|%c|%m|%l"   # node, gres, partition (* the default), CPUs, MB, MaxTime


def sinfo_text() -> str:
    """Every node of every partition (hidden ones too), one ``SINFO_FORMAT`` line each."""
    argv = ["sinfo", "-h", "-N", "-a", "-o", SINFO_FORMAT]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ConfigError(f"executor=slurm: cannot ask SLURM for its nodes (sinfo: {e})",
                          hint="run on a machine with the SLURM client commands") from None


def _number(text: str) -> int | None:
    m = re.match(r"\d+", text.strip())
    return int(m.group()) if m else None


def read_sinfo(text: str, partition: str | None) -> tuple[str | None, list[dict], list[str]]:
    """(the partitions found, joined by commas; their nodes; every partition's name) from
    ``sinfo`` lines in ``SINFO_FORMAT``. ``partition`` may list several (``gpu,gpu-long``: the
    job runs on whichever starts it first); the default partition (marked ``*``) when None. A
    node's ``max_min`` is its partition's MaxTime in minutes (None: no limit; the largest when
    it is in several); a field sinfo left out is None (not checked).

    A node's ``partitions`` are the listed ones it is in (a gang must fit one of them).

    >>> text = "n1|gpu:2|debug*|2|24105|infinite\\nn2|(null)|cpu|64|256000|2-00:00:00"
    >>> read_sinfo(text, None)[0], read_sinfo(text, "cpu")[1]  # doctest: +NORMALIZE_WHITESPACE
    ('debug', [{'node': 'n2', 'gpus': 0, 'cpus': 64, 'mem_mb': 256000, 'max_min': 2880,
                'partitions': ['cpu']}])
    >>> read_sinfo(text, "gpu")[1:]
    ([], ['debug', 'cpu'])
    >>> read_sinfo(text, "cpu,debug,gpu")[0], len(read_sinfo(text, "cpu,debug")[1])
    ('debug,cpu', 2)
    """
    names: list[str] = []
    wanted = listed(partition)
    found: list[str] = []
    nodes: dict[str, dict] = {}
    for line in text.splitlines():
        fields = (line.split("|") + [""] * 6)[:6]
        node, gres, part, cpus, mem, limit = fields
        name = part.strip().rstrip("*")
        if not name:
            continue
        names += [name] if name not in names else []
        if not (name in wanted or (not wanted and part.strip().endswith("*"))):
            continue
        found += [name] if name not in found else []
        try:
            max_min = None if limit.strip() in ("", "infinite", "UNLIMITED", "n/a") \
                else time_minutes(limit.strip())
        except ValueError:
            max_min = None
        old = nodes.get(node, {"max_min": 0})
        if old["max_min"] is None or max_min is None:   # a node in several partitions: the
            max_min = None                               # longest MaxTime lets a job through
        nodes[node] = {"node": node, "gpus": max(old.get("gpus", 0), gres_gpus(gres)),
                       "cpus": _number(cpus), "mem_mb": _number(mem),
                       "max_min": max_min if max_min is None else max(max_min, old["max_min"]),
                       "partitions": [*(p for p in old.get("partitions", []) if p != name),
                                      name]}
    return ",".join(found) or None, list(nodes.values()), names


def gang_nodes(gpus: int, per_node: list[int]) -> tuple[int, int]:
    """(nodes, GPUs per node) for one multi-GPU job.

    >>> gang_nodes(2, [4, 4]), gang_nodes(16, [8, 8, 8])
    ((1, 2), (2, 8))
    """
    biggest = max(per_node, default=0)
    if gpus <= biggest:
        return 1, gpus
    n = -(-gpus // biggest) if biggest else 0
    if biggest and gpus % biggest == 0 and sum(1 for g in per_node if g >= biggest) >= n:
        return n, biggest
    raise ConfigError(f"{gpus} GPUs do not fill whole nodes of this partition "
                      f"(GPUs per node: {sorted(per_node, reverse=True)[:8]})")


def partition_gpus(nodes: list[dict]) -> dict[str, list[int]]:
    """GPUs per node of each partition (``read_sinfo``'s nodes), in sinfo's order.

    >>> partition_gpus([{"gpus": 8, "partitions": ["gpu", "long"]}, {"gpus": 4,
    ...                 "partitions": ["gpu"]}])
    {'gpu': [8, 4], 'long': [8]}
    """
    out: dict[str, list[int]] = {}
    for node in nodes:
        for name in node.get("partitions") or ["?"]:
            out.setdefault(name, []).append(node["gpus"])
    return out


def _gang_room(gpus: int, name: str, per_node: list[int]) -> str:
    """Why a gang of ``gpus`` does not fit partition ``name`` ("" when it does), with the count
    of its nodes that would do.

    >>> _gang_room(16, "gpu", [8]), _gang_room(8, "gpu", [8, 4]), _gang_room(6, "gpu", [4, 4])
    ("'gpu' has 1 node with 8 GPUs, 2 needed", '', "'gpu' has nodes of 4 GPUs, 6 is no multiple")
    """
    biggest = max(per_node, default=0)
    if not biggest:
        return f"'{name}' has no node with GPUs"
    if gpus <= biggest:
        return ""
    if gpus % biggest:
        return f"'{name}' has nodes of {biggest} GPUs, {gpus} is no multiple"
    have, need = sum(1 for g in per_node if g >= biggest), gpus // biggest
    nodes = "node" if have == 1 else "nodes"
    return "" if have >= need else f"'{name}' has {have} {nodes} with {biggest} GPUs, {need} needed"


def gang_in_partitions(gpus: int, per_partition: dict[str, list[int]]) -> tuple[int, int]:
    """(nodes, GPUs per node) of one multi-GPU job when ``partition`` lists several: SLURM puts
    a job in ONE of them, all its nodes there, so it must fit whole nodes of one partition
    (the fewest nodes win, then the first listed). ConfigError naming each one's count.

    >>> gang_in_partitions(16, {"gpu": [4, 4, 4, 4], "gpu-long": [8, 8]})
    (2, 8)
    >>> gang_in_partitions(16, {"gpu": [8], "gpu-long": [8]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    orchestrator.errors.ConfigError: 16 GPUs as one job ... 'gpu' has 1 node with 8 GPUs, 2 ...
    """
    shapes = [gang_nodes(gpus, per_node) for name, per_node in per_partition.items()
              if not _gang_room(gpus, name, per_node)]
    if shapes:
        return min(shapes, key=lambda shape: shape[0])
    rooms = "; ".join(_gang_room(gpus, n, g) for n, g in per_partition.items())
    raise ConfigError(f"{gpus} GPUs as one job on whole nodes of one partition (SLURM runs a "
                      f"job in a single partition of the list), but none has them: {rooms}")


def largest_gang(per_partition: dict[str, list[int]]) -> int:
    """The most GPUs one job gets on whole nodes of one partition.

    >>> largest_gang({"gpu": [4, 4, 4], "gpu-long": [8], "cpu": [0]})
    12
    """
    best = 0
    for per_node in per_partition.values():
        biggest = max(per_node, default=0)
        best = max(best, biggest * sum(1 for g in per_node if g >= biggest))
    return best


def import_submitit():
    try:
        import submitit
    except ImportError:
        raise ConfigError("executor=slurm needs submitit, which is not installed",
                          hint="pip install -e '.[slurm]'") from None
    return submitit


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_EVERY_S):
        try:
            path.touch()
        except OSError:
            pass


class TimeLimitWarning(RuntimeError):
    """SLURM's warning signal reached a task that submitit leaves running (not rank 0)."""


def warning_signal() -> signal.Signals:
    """The signal SLURM sends before the time limit (``--signal``; submitit's, USR2 unless
    ``SUBMITIT_PREEMPT_SIGNAL`` names another)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper().removeprefix("SIG")
    return getattr(signal.Signals, f"SIG{name}", signal.SIGUSR2)


def _on_warning(previous):
    """The job process's handler of the warning: submitit's (rank 0: raises "timed-out and not
    checkpointable", or requeues a preempted job and exits), then, where that returns (another
    node of a gang), an error of our own: either way the worker is stopped."""
    def handler(signum, frame):
        if callable(previous):
            previous(signum, frame)
        raise TimeLimitWarning(f"signal {signal.Signals(signum).name} from SLURM: the job is "
                               "near its time limit (or preempted); its worker is stopped")
    return handler


def spare_worker_the_warning(start):
    """``start()`` (which runs the worker to its end) with SLURM's warning signal blocked in
    this thread, so the worker and its children inherit it blocked: SLURM signals every
    process of the job step, and the worker, which has no handler for it, died at once, its
    stage's temporary output left in the cache's tmp/ (rag gc's to remove) and no "stopped"
    line in its log. A thread that does not block it takes the signal for this process, whose
    handler (``_on_warning``) raises here: ``run_worker`` then stops the worker with SIGTERM,
    which the worker handles like Ctrl-C (stage stopped, temporary output removed, "stopped"
    logged). Outside the main thread (submitit's debug cluster) ``start()`` runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        return start()
    sig = warning_signal()
    done = threading.Event()
    threading.Thread(target=done.wait, name="ragline-slurm-warning", daemon=True).start()
    previous = signal.getsignal(sig)
    signal.signal(sig, _on_warning(previous))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {sig})
    try:
        return start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        done.set()
        signal.signal(sig, signal.SIG_DFL if previous is None else previous)


def run_shard_job(task_file: str, log_path: str, env: dict, cwd: str, heartbeat: str,
                  stale_s: float, expected: list[str]) -> int:
    """Body of one array task on a compute node: the worker process, same as local."""
    from orchestrator.executors.launch import run_worker, worker_argv

    return spare_worker_the_warning(lambda: run_worker(
        worker_argv(task_file), log_path, env, cwd, heartbeat, stale_s, expected))


def run_gang_job(task_file: str, log_path: str, env: dict, cwd: str, heartbeat: str,
                 stale_s: float, expected: list[str], nproc: int) -> int:
    """Body of one node's task of a multi-GPU job: torchrun with ``nproc`` ranks on this node."""
    import submitit

    from orchestrator.executors.launch import run_worker, torchrun_argv

    job = submitit.JobEnvironment()
    port = 20000 + int(str(job.job_id).split("_")[0]) % 20000
    argv = torchrun_argv(task_file, job.num_nodes, job.node, nproc, job.hostnames[0], port)
    return spare_worker_the_warning(lambda: run_worker(argv, log_path, env, cwd, heartbeat,
                                                       stale_s, expected))


class SlurmExecutor:
    name = "slurm"

    def __init__(self, store, cfg: dict, jobs: int = 0):
        import_submitit()  # fail before anything runs, with the extra to install
        self.store = store
        self.cfg = dict(cfg)
        self.cluster = cfg.get("cluster") or "slurm"
        if self.cluster not in ("slurm", "local", "debug"):
            raise ConfigError(f"ragline.executor.cluster: '{self.cluster}' is not slurm, local or debug",
                              hint="slurm submits with sbatch; local runs the jobs as local processes")
        if self.cluster == "slurm" and not (shutil.which("sbatch") and shutil.which("sinfo")):
            raise ConfigError("executor=slurm: no sbatch/sinfo on this machine",
                              hint="run from a SLURM login node, or set ragline.executor.cluster=local")
        self.array_parallelism = jobs or int(cfg.get("array_parallelism") or 64)
        self.stale_s = float(cfg.get("heartbeat_s") or 120)
        self.env_patterns = [*FORWARD_ENV, *(cfg.get("env") or [])]
        self.jobs: dict[str, str] = {}
        self.on_submitted = None   # the runner's: job ids to the run record (report_submitted)
        self._active: list = []
        self._sinfo: str | None = None
        self._started: set[str] = set()   # job ids squeue showed started at the last poll
        self._reason = ""                 # the pending reason SLURM never clears, if one

    # -- checks --------------------------------------------------------------------------------
    def nodes(self) -> tuple[str | None, list[dict], list[str]]:
        """``read_sinfo`` of the configured partition, asked once per executor."""
        if self._sinfo is None:
            self._sinfo = sinfo_text()
        return read_sinfo(self._sinfo, partition_setting(self.cfg)[1])

    def gpus_per_node(self) -> list[int]:
        """GPUs per node where the jobs will run: the partition's, or this machine's for
        ``cluster: local``."""
        if self.cluster != "slurm":
            return [len(visible_gpus())]
        return [n["gpus"] for n in self.nodes()[1]]

    def check_resources(self, steps: list) -> None:
        """The partition and the job settings against its nodes (``sinfo``), then GPU steps
        against them, never this machine's devices: a login node without GPUs submits GPU
        steps."""
        setting, part = partition_setting(self.cfg)
        where = f"partition '{part}'" if part else "the default partition"
        if steps and self.cluster == "slurm":
            check_partition(self.cfg, *self.nodes())

        def no_gpus(step, per_node: list[int]) -> ConfigError:
            return ConfigError(f"steps.{step.name}.gpus: {step.gpus} GPU(s) asked for, but {where} "
                               "has no node with GPUs (sinfo gres)",
                               hint=f"set {setting} to a GPU partition")

        def too_many(step, per_node: list[int]) -> ConfigError:
            return ConfigError(f"steps.{step.name}.gpus: {step.gpus} GPUs per shard asked for, "
                               f"but the nodes of {where} have at most {max(per_node)}",
                               hint=f"lower it: steps.{step.name}.gpus={max(per_node)}")

        def split(gpus: int, per_node: list[int]):   # several partitions: gang_shape, below
            return gang_nodes(gpus, per_node) if len(listed(part)) < 2 else None

        check_node_gpus(steps, self.gpus_per_node, split, too_many, no_gpus)
        for step in steps:
            if step.gpus and runs_as_ranks(step):
                self.gang_shape(step)

    def gang_shape(self, step) -> tuple[int, int]:
        """(nodes, GPUs per node) of a multi-GPU step's one job. With several partitions
        listed, SLURM runs the job in one of them: its nodes must all be in that one, so each
        partition is counted on its own (they were counted together: a gang of 2 nodes passed
        with one node in each, and pended forever)."""
        per_partition = partition_gpus(self.nodes()[1]) if self.cluster == "slurm" else {}
        if len(per_partition) < 2:
            return gang_nodes(step.gpus, self.gpus_per_node())
        try:
            return gang_in_partitions(step.gpus, per_partition)
        except ConfigError as e:
            setting, part = partition_setting(self.cfg)
            most = largest_gang(per_partition)
            raise ConfigError(f"steps.{step.name}.gpus: {e.message}",
                              hint=f"lower it (steps.{step.name}.gpus={most} fits one), or set "
                                   f"{setting} to a partition with enough such nodes "
                                   f"(now {part})") from None

    # -- submitting ----------------------------------------------------------------------------
    def submitter(self, step, folder: Path, nodes: int, gpus_per_node: int):
        """A submitit executor with this step's sbatch settings."""
        ex = import_submitit().AutoExecutor(folder=str(folder / "%j"), cluster=self.cluster)
        ex.update_parameters(**sbatch_parameters(self.cfg, step.name, nodes, gpus_per_node,
                                                 self.array_parallelism))
        return ex

    def run(self, step, tasks: list) -> dict[str, TaskResult]:
        folder = Path(tasks[0].log).parent / "slurm"  # submitit's job files, in the run record
        beat = folder / f"heartbeat.{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            beat.touch()
            files = write_task_files(tasks)
        except OSError as e:  # a read-only or full disk: the step fails, the run goes on
            return {t.key: Failed(one_line(e), t.log) for t in tasks}
        stop = threading.Event()
        threading.Thread(target=_heartbeat, args=(beat, stop), daemon=True).start()
        try:
            try:
                self._submit_waited(step, tasks, files, folder, str(beat))
            except SUBMIT_ERRORS as e:   # sbatch refused: this step fails, independent ones run
                return {t.key: refused(e, self.cfg) for t in tasks}
            report_submitted(self, {t.key: str(j.job_id) for j, t in zip(self._active, tasks)})
            never = self._wait(step)
            if never:   # pending for a reason SLURM never clears: stop waiting, say which setting
                self.cancel()
            return {t.key: self._outcome(job, t, files[t.key], never)
                    for job, t in zip(self._active, tasks)}
        except KeyboardInterrupt:
            self.cancel()
            raise
        finally:
            stop.set()
            self._active = []
            beat.unlink(missing_ok=True)
            remove_task_files(files)

    def _submit_waited(self, *args) -> None:
        """``_submit`` in a thread that a Ctrl-C or SIGTERM waits for (``SUBMIT_GRACE_S``), so
        that ``run`` cancels the jobs sbatch submitted: sbatch outlives an interrupted caller and
        submitted them after ``rag run`` had exited, to fail with nobody waiting (their task files
        removed). A busy slurmctld makes sbatch take seconds; a second signal stops the wait.
        An Event, not ``Thread.join``: Python 3.11's join, interrupted by a signal, marks a live
        thread stopped (the run then exited while sbatch still ran)."""
        raised: list[BaseException] = []
        done = threading.Event()

        def submit():
            try:
                self._submit(*args)
            except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
                raised.append(e)
            finally:
                done.set()

        threading.Thread(target=submit, name="sbatch", daemon=True).start()
        try:
            while not done.wait(0.1):
                pass
        except KeyboardInterrupt:
            log.warning("waiting for sbatch to return (at most %d s) to cancel what it submitted",
                        SUBMIT_GRACE_S)
            done.wait(SUBMIT_GRACE_S)
            raise
        if raised:
            raise raised[0]

    def _submit(self, step, tasks: list, files: dict, folder: Path, beat: str) -> None:
        """The step's tasks as one job array, or one job of ranks, into ``self._active``."""
        # the jobs get RAGLINE_*, HF_*, the env: list and what the step reads from the
        # environment sbatch exports; their arguments, pickled into job files kept in the run
        # record, hold the names only (no value is written down): the log names any missing
        expected = sorted({*forwarded_env(self.env_patterns),
                           *(n for n in step_env_names(step) if n in os.environ)})
        env = {} if step.gpus else {"CUDA_VISIBLE_DEVICES": ""}   # hide the login node's GPUs
        common = (env, os.getcwd(), beat, self.stale_s, expected)
        if runs_as_ranks(step):
            nodes, per = self.gang_shape(step)
            t = tasks[0]
            ex = self.submitter(step, folder, nodes, per)
            self._active = [ex.submit(run_gang_job, str(files[t.key]), t.log, *common, per)]
            return
        ex = self.submitter(step, folder, 1, step.gpus)
        jobs = []
        with ex.batch():  # one job array
            for t in tasks:
                jobs.append(ex.submit(run_shard_job, str(files[t.key]), t.log, *common))
        self._active = jobs

    def _wait(self, step) -> Failed | None:
        """Until every job is done. Every ``POLL_S`` squeue says why those not started wait: a
        reason SLURM never clears ends the wait (its failure returned); any other is logged
        every ``NOTE_S`` (a job that cannot start used to leave ``rag run`` silent forever)."""
        polled = noted = time.monotonic()
        while not all(job.done() for job in self._active):
            time.sleep(1)
            if self.cluster != "slurm" or time.monotonic() - polled < POLL_S:
                continue
            polled = time.monotonic()
            ids = sorted({str(job.job_id).split("_")[0] for job in self._active})
            lines = squeue_lines(ids)
            self._started = started_ids(lines)
            several = len(listed(partition_setting(self.cfg)[1]))
            verdict, reason, pending = pending_verdict(lines, several)
            if verdict == "never":
                self._reason = reason
                return pending_failure(reason, self.cfg)
            if pending and time.monotonic() - noted >= NOTE_S:
                noted = time.monotonic()
                log.warning("%s: waiting: %d SLURM job(s) pending (%s)", step.name, pending, reason)
        return None

    def _outcome(self, job, task, task_file: Path, never: Failed | None) -> TaskResult:
        """A job's result; after the jobs were cancelled for a reason SLURM never clears
        (``never``), a job not done is that failure, or, if it was running at the last poll,
        cancelled with the others (it did start)."""
        if never is None or job.done():
            return self._result(job, task, task_file)
        if str(job.job_id) in self._started:
            return pending_failure(self._reason, self.cfg, started=str(job.job_id))
        return never

    def _result(self, job, task, task_file: Path) -> TaskResult:
        what = f"SLURM job {job.job_id}"
        try:
            code = max(job.results())
        except Exception:  # noqa: BLE001 - a job killed, timed out, preempted or failed
            result = read_result(Path(f"{task_file}.result"), 1, task.log, what)
            if isinstance(result, Failed) and "without a result" in result.message:
                return job_failure(job, task.log, self.cfg, task.step, task.shard[1])
            return result
        return read_result(Path(f"{task_file}.result"), code, task.log, what)

    def cancel(self) -> None:
        """Ctrl-C or SIGTERM: scancel this run's jobs."""
        for job in list(self._active):
            try:
                job.cancel(check=False)
            except Exception:  # noqa: BLE001 - already gone
                pass


# -- what went wrong, in words ----------------------------------------------------------------
SUBMIT_GRACE_S = 60  # an interrupted run waits this long for sbatch, to cancel its jobs
POLL_S = 30        # squeue for pending jobs' reasons: every 30 s, light on slurmctld
NOTE_S = 180       # a "waiting: N jobs pending" line every 3 minutes while they wait
# SLURM's pending reasons that never clear by themselves -> the setting behind them. Not
# PartitionNodeLimit ("can also indicate that required nodes are DOWN or DRAINED") nor
# PartitionConfig ("not available now"): both clear when the nodes come back, so they wait
NEVER_STARTS = {"PartitionTimeLimit": "time", "BadConstraints": "constraint",
                "InvalidAccount": "account", "InvalidQOS": "qos"}


def _never_setting(reason: str, partitions: int = 1) -> str | None:
    """The setting behind a pending reason that never clears; None for one that may.

    >>> _never_setting("PartitionTimeLimit"), _never_setting("PartitionNodeLimit")
    ('time', None)
    >>> _never_setting("PartitionTimeLimit", partitions=2) is None
    True
    """
    if "MaxWallDuration" in reason:   # QOSMaxWallDurationPerJobLimit, AssocMaxWall...
        return "time"
    if partitions > 1 and reason.startswith("Partition"):
        # squeue shows the reason of the last partition tried: another listed one may take the
        # job (check_partition already refused a time over every listed MaxTime)
        return None
    return NEVER_STARTS.get(reason)


def _array_size(job_id: str) -> int:
    """Array tasks in one squeue id: ``12_[0-3,7%4]`` is 5.

    >>> _array_size("12_3"), _array_size("12_[0-3,7%4]"), _array_size("12_[5]")
    (1, 5, 1)
    """
    m = re.search(r"\[([^\]%]*)", job_id)
    if not m:
        return 1
    count = 0
    for part in m.group(1).split(","):
        first, _, last = part.partition("-")
        count += int(last) - int(first) + 1 if last else 1
    return count


def pending_verdict(lines: list[str], partitions: int = 1) -> tuple[str, str, int]:
    """(verdict, reason, pending tasks) from ``squeue -h -o '%i|%T|%r'`` lines: ``never`` when
    a pending job waits for a reason SLURM never clears (``reason`` is that one), ``waiting``
    when jobs are pending for another reason (the most common), ``""`` when none pend.
    ``partitions``: how many the jobs list (``_never_setting``).

    >>> pending_verdict(["7_[2-3%4]|PENDING|PartitionTimeLimit", "7_0|RUNNING|None"])
    ('never', 'PartitionTimeLimit', 2)
    >>> pending_verdict(["7_[1-3%4]|PENDING|Resources", "8|PENDING|Priority"])
    ('waiting', 'Resources', 4)
    >>> pending_verdict(["7_0|RUNNING|None"])
    ('', '', 0)
    """
    counts: dict[str, int] = {}
    for line in lines:
        fields = line.strip().split("|")
        if len(fields) == 3 and fields[1] == "PENDING":
            counts[fields[2]] = counts.get(fields[2], 0) + _array_size(fields[0])
    pending = sum(counts.values())
    for reason in counts:
        if _never_setting(reason, partitions):
            return "never", reason, pending
    if not counts:
        return "", "", 0
    return "waiting", max(counts, key=lambda r: counts[r]), pending


def started_ids(lines: list[str]) -> set[str]:
    """The jobs of ``squeue -h -o '%i|%T|%r'`` lines that are no longer pending (running,
    completing): the array tasks that started.

    >>> sorted(started_ids(["7_[2-3%4]|PENDING|PartitionTimeLimit", "7_0|RUNNING|None",
    ...                     "7_1|COMPLETING|None"]))
    ['7_0', '7_1']
    """
    fields = [line.strip().split("|") for line in lines]
    return {f[0] for f in fields if len(f) == 3 and f[1] != "PENDING"}


def squeue_lines(job_ids: list[str]) -> list[str]:
    """squeue's ``id|state|reason`` lines of these jobs; none when squeue fails (asked again
    at the next poll)."""
    argv = ["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i|%T|%r"]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []


def pending_failure(reason: str, cfg: dict, started: str = "") -> Failed:
    """A job SLURM will never start, as a failure naming the setting behind ``reason``; with
    ``started`` (a job id), that job of the same step, which had started and was cancelled
    with the others.

    >>> pending_failure("InvalidQOS", {"qos": "big"}).message
    'SLURM will never start the job: pending for InvalidQOS (ragline.executor.qos=big); cancelled'
    >>> pending_failure("PartitionTimeLimit", {}, started="7_0").message  # doctest: +ELLIPSIS
    'SLURM job 7_0 was cancelled after it started: other jobs of its step were pending for ...'
    """
    key = _never_setting(reason) or "partition"
    setting, value = (time_setting(cfg) if key == "time" else
                      (f"ragline.executor.{key}", cfg.get(key)))
    asked = f"{setting}={value}"
    message = (f"SLURM job {started} was cancelled after it started: other jobs of its step "
               f"were pending for {reason} ({asked}), which SLURM never clears" if started else
               f"SLURM will never start the job: pending for {reason} ({asked}); cancelled")
    return Failed(message, bad_input=True, hint=f"change {setting} (see sinfo, sacctmgr show "
                                                "qos/assoc) and rerun")


SUBMIT_ERRORS: tuple = (subprocess.CalledProcessError, OSError)
try:   # sbatch's refusal, as submitit raises it
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    SUBMIT_ERRORS = (FailedJobError, FailedSubmissionError, *SUBMIT_ERRORS)
except ImportError:   # SlurmExecutor refuses to start without submitit
    pass


def sbatch_error(text: str) -> str:
    """The line of sbatch's stderr that says why.

    >>> sbatch_error("sbatch: error: Batch job submission failed: Invalid partition name")
    'Batch job submission failed: Invalid partition name'
    >>> sbatch_error("sbatch: warning: x\\nsbatch: error: invalid partition specified: nope\\n")
    'invalid partition specified: nope'
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()] or lines or ["(no message)"]
    return re.sub(r"^sbatch: error: ", "", errors[-1])


def refused(e: BaseException, cfg: dict) -> Failed:
    """sbatch refused a job (a bad partition, more CPUs than a node has): bad input, the step
    fails and the run goes on; a scheduler that could not be reached is not the input's fault."""
    text = str(getattr(e, "stderr", "") or e)
    line = sbatch_error(text)
    transient = re.search(r"temporarily|timed? ?out|unable to contact|try again|connection",
                          text, re.I)
    return Failed(f"sbatch refused the job: {line}", bad_input=not transient,
                  hint="rerun when slurmctld answers (scontrol ping)" if transient else
                  "check ragline.executor.partition, cpus_per_task, mem_gb, time, constraint, "
                  "account, qos and sbatch (sinfo shows the nodes)")


def stderr_reason(text: str) -> str:
    """The last line of a job's stderr that says something: a Python exception's line before
    any other, never submitit's separators or srun's "Exited with exit code".

    >>> stderr_reason("Traceback (most recent call last):\\nImportError: no orchestrator\\n"
    ...               "srun: error: vm: task 0: Exited with exit code 1\\n-----\\n")
    'ImportError: no orchestrator'
    >>> stderr_reason("slurmstepd: error: *** JOB 5 CANCELLED AT 12:00 DUE TO TIME LIMIT ***")
    'slurmstepd: error: *** JOB 5 CANCELLED AT 12:00 DUE TO TIME LIMIT ***'
    """
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not re.fullmatch(r"[-=_*]+", ln)
             and "Exited with exit code" not in ln]
    errors = [ln for ln in lines if re.match(r"([\w.]+\.)?\w*(Error|Exception|Interrupt)\b", ln)]
    return (errors or lines or [""])[-1][:300]


def job_state(job) -> tuple[str, str]:
    """(state, exit code) of a finished job from ``sacct``; submitit's state when sacct cannot
    say (no accounting)."""
    argv = ["sacct", "-n", "-P", "-j", str(job.job_id), "-o", "JobID,State,ExitCode"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[0] == str(job.job_id):
            return fields[1].split()[0], fields[2]
    try:
        return str(job.state), ""
    except Exception:  # noqa: BLE001 - submitit's watcher: any failure means "unknown"
        return "UNKNOWN", ""


def job_failure(job, log_path: str, cfg: dict, step: str = "", shards: int = 1) -> Failed:
    """A job that ended without the worker's result (its setup failed, ragline did not import
    on the node, the time limit, scancel): its state, exit code and stderr's last word, and a
    log that exists (submitit's stderr file when the task's own log was never written)."""
    err = Path(job.paths.stderr)
    try:
        text = err.read_text(errors="replace")
    except OSError:
        text = ""
    state, code = job_state(job) if "slurm" in type(job).__name__.lower() else ("FAILED", "")
    reason = stderr_reason(text)
    what = f"SLURM job {job.job_id}" + (f" (step {step})" if step else "")
    log_file = log_path if log_path and Path(log_path).is_file() else str(err)
    if state == "TIMEOUT" or "timed-out" in text or "DUE TO TIME LIMIT" in text:
        return time_limit_failure(what, cfg, log_file, step, shards)
    if state == "OUT_OF_MEMORY":
        message = f"{what} ran out of memory (ragline.executor.mem_gb={cfg.get('mem_gb')})"
        hint = "raise ragline.executor.mem_gb"
    else:
        exit_code = f", exit code {code.split(':')[0]}" if code and code != "0:0" else ""
        message = (f"{what} {state}{exit_code} before the worker reported: "
                   + (reason or "its stderr is empty (a setup line failed?)"))
        hint = "see the job's stderr; ragline.executor.setup runs first in every job"
    return Failed(message, log_file, hint=hint)


def time_limit_failure(what: str, cfg: dict, log_file: str, step: str = "",
                       shards: int = 1) -> Failed:
    """A job stopped at its time limit: which setting, whether its worker stopped the stage
    (its "stopped" line: the temporary output removed) or was killed, and what to change.

    >>> f = time_limit_failure("SLURM job 7_0 (step sft)", {"time": 30}, "/nonexistent.log")
    >>> f.message
    ... # doctest: +ELLIPSIS
    'SLURM job 7_0 (step sft) hit its time limit (ragline.executor.time=30): its worker did ...'
    >>> f.hint  # doctest: +ELLIPSIS
    'raise ragline.executor.time (30 minutes now; the job is warned 30 s before its end ...'
    """
    setting, value = time_setting(cfg)
    try:
        tail = Path(log_file).read_text(errors="replace")[-4000:]
    except OSError:
        tail = ""
    stopped = re.search(r": stopped$", tail, re.M) is not None
    outcome = ("the stage was stopped and its temporary output removed" if stopped else
               "its worker did not report stopping (rag gc removes what it left)")
    try:
        minutes = time_minutes(value)
        minutes = f"{minutes} minute{'' if minutes == 1 else 's'} now; "
    except ValueError:
        minutes = ""
    more = (f", or split the work into more shards (steps.{step}.shards; a rerun reuses the "
            "shards that finished)" if step and shards > 1 else "")
    return Failed(f"{what} hit its time limit ({setting}={value}): {outcome}", log_file,
                  hint=f"raise {setting} ({minutes}the job is warned {warning_s(cfg)} s before "
                       f"its end and stopped){more}")


def time_setting(cfg: dict) -> tuple[str, object]:
    """(the setting that gives a job its ``--time``, its value as written): ``sbatch: {time:
    X}`` (or the older ``extra``) wins, as in the job script submitit writes, then ``time``,
    then the older ``timeout_min`` (``job_time``).

    >>> time_setting({"time": 30}), time_setting({"timeout_min": 20})
    (('ragline.executor.time', 30), ('ragline.executor.timeout_min', 20))
    >>> time_setting({"time": 30, "sbatch": {"time": "2:00:00"}})
    ('ragline.executor.sbatch.time', '2:00:00')
    """
    for key in ("sbatch", "extra"):
        value = (cfg.get(key) or {}).get("time")
        if value:
            return f"ragline.executor.{key}.time", value
    key = "timeout_min" if cfg.get("timeout_min") and not cfg.get("time") else "time"
    return f"ragline.executor.{key}", job_time(cfg)


def warning_s(cfg: dict) -> int:
    """Seconds before its time limit that a job gets the warning signal: ``SIGNAL_DELAY_S``,
    or what ``sbatch: {signal: ...}`` says (``[B:]USR2@120``; SLURM's 60 s without ``@``).

    >>> warning_s({}), warning_s({"sbatch": {"signal": "B:USR2@120"}})
    (30, 120)
    >>> warning_s({"sbatch": {"signal": "USR2"}})
    60
    """
    for key in ("sbatch", "extra"):
        value = (cfg.get(key) or {}).get("signal")
        if value:
            m = re.search(r"@(\d+)\s*$", str(value))
            return int(m.group(1)) if m else 60
    return SIGNAL_DELAY_S


def check_partition(cfg: dict, name: str | None, nodes: list[dict], names: list[str]) -> None:
    """The partition exists, and a job's cpus_per_task, mem_gb and time fit its nodes: sbatch
    would refuse them, or SLURM leave the jobs pending forever. With several partitions listed,
    each must exist, and the job must fit the largest node and MaxTime of any of them.

    >>> n = [{"node": "n1", "gpus": 2, "cpus": 2, "mem_mb": 24105, "max_min": 60}]
    >>> check_partition({"cpus_per_task": 2, "time": 60}, "debug", n, ["debug"])   # fits
    >>> check_partition({"cpus_per_task": 8}, "debug", n, ["debug"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    orchestrator.errors.ConfigError: ragline.executor.cpus_per_task: 8 CPUs per job asked ...
      hint: lower it: ragline.executor.cpus_per_task=2
    """
    setting, part = partition_setting(cfg)
    check_partition_names(setting, part, bool(nodes), names)
    where = f"partition '{name}'" if part else f"the default partition '{name}'"
    where = f"partitions '{name}'" if "," in str(name) else where
    cpus = int(cfg.get("cpus_per_task") or 1)
    most = max((n["cpus"] for n in nodes if n["cpus"]), default=None)
    if most is not None and cpus > most:
        raise ConfigError(f"ragline.executor.cpus_per_task: {cpus} CPUs per job asked for, but "
                          f"the nodes of {where} have at most {most}",
                          hint=f"lower it: ragline.executor.cpus_per_task={most}")
    mem_mb = max((n["mem_mb"] for n in nodes if n["mem_mb"]), default=None)
    if cfg.get("mem_gb") and mem_mb is not None and float(cfg["mem_gb"]) * 1024 > mem_mb:
        raise ConfigError(f"ragline.executor.mem_gb: {cfg['mem_gb']} GB per job asked for, but "
                          f"the nodes of {where} have at most {mem_mb // 1024} GB",
                          hint=f"lower it: ragline.executor.mem_gb={max(mem_mb // 1024, 1)}")
    check_max_time(cfg, where, [n["max_min"] for n in nodes], several="," in str(name))


_WARNED: set[str] = set()   # a warning the checks give is given once a process, not per check


def check_max_time(cfg: dict, where: str, limits: list[int | None],
                   several: bool = False) -> None:
    """The job's time (``time_setting``: ``sbatch.time`` when set) is within the partitions'
    MaxTime (``limits``, None: no limit). Past it, SLURM leaves the job pending forever, so it
    is refused, unless a QOS is set: one with ``Flags=PartitionTimeLimit`` lets a job run past
    its partition's MaxTime, which only ``sacctmgr`` could tell, so that is a warning (a job
    its QOS does not let through is cancelled as it pends, ``PartitionTimeLimit``).

    >>> check_max_time({"time": 60}, "partition 'debug'", [60, None])     # no limit on one
    >>> check_max_time({"time": 90, "qos": "long"}, "partition 'debug'", [60])   # warned
    >>> check_max_time({"sbatch": {"time": "2:00:00"}}, "partition 'debug'", [60])
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    orchestrator.errors.ConfigError: ragline.executor.sbatch.time: 120 minutes asked for, ...
      hint: lower it: ragline.executor.sbatch.time=60, or set a qos that may run longer ...
    """
    setting, value = time_setting(cfg)
    minutes = time_minutes(value)
    if not limits or None in limits or minutes <= max(limits):
        return
    problem = (f"{setting}: {minutes} minutes asked for, but {where} "
               f"{'allow' if several else 'allows'} at most {max(limits)} (its MaxTime)")
    qos = cfg.get("qos") or (cfg.get("sbatch") or {}).get("qos")
    if qos:
        # with a list, SLURM names the last partition it tried: a "waiting" line, no cancel
        then = ("the jobs wait, pending for PartitionTimeLimit (said every few minutes)"
                if several else "the jobs pend with PartitionTimeLimit and the step is cancelled")
        warning = (f"{problem}; going on, as qos '{qos}' may allow it "
                   f"(Flags=PartitionTimeLimit); if it does not, {then}")
        if warning not in _WARNED:
            _WARNED.add(warning)
            log.warning("%s", warning)
        return
    raise ConfigError(problem, hint=f"lower it: {setting}={max(limits)}, or set a qos that may "
                                    f"run longer (ragline.executor.qos)")


def check_partition_names(setting: str, partition: str | None, found: bool,
                          names: list[str]) -> None:
    """Every partition ``partition`` lists is one of ``names``; with none listed, that
    ``sinfo`` found a default one (``found``). ``setting`` is where the value came from.

    >>> check_partition_names("ragline.executor.partition", "gpu,cpu", True, ["gpu", "cpu"])
    >>> check_partition_names("ragline.executor.sbatch.partition", "gpu,gpx", True, ["gpu"])
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    orchestrator.errors.ConfigError: ragline.executor.sbatch.partition: no partition 'gpx' ...
      hint: set ragline.executor.sbatch.partition to one of them (sinfo)
    """
    have = ", ".join(names) or "none"
    for part in listed(partition):
        if part not in names:
            raise ConfigError(f"{setting}: no partition '{part}' on this cluster (have: {have})"
                              f"{did_you_mean(part, names)}",
                              hint=f"set {setting} to one of them (sinfo)")
    if not listed(partition) and not found:
        raise ConfigError(f"{setting}: not set, and this cluster has no default partition "
                          f"(have: {have})", hint=f"set {setting} to one of them (sinfo)")


# submitit asks SLURM for SIGUSR2 this long before the time limit (its default, 90 s, stopped a
# time=2 job after 27 s). The worker cannot checkpoint, so the signal only ends a job that would
# be killed anyway, with a clear "timed-out" in its stderr; kept short so a job gets nearly all
# its time. A preemption's USR2 (not timed) still makes submitit requeue the job, whose rerun
# reuses the shards already committed. sbatch: {signal: USR2@120} overrides it.
SIGNAL_DELAY_S = 30


def sbatch_parameters(cfg: dict, step: str, nodes: int, gpus_per_node: int,
                      array_parallelism: int) -> dict:
    """submitit parameters from the ``ragline.executor`` block.

    >>> p = sbatch_parameters({"partition": "gpu", "time": "2:00:00", "sbatch": {"exclude": "n3"}},
    ...                       "sft", 2, 8, 64)
    >>> p["slurm_partition"], p["timeout_min"], p["nodes"], p["gpus_per_node"], p["slurm_additional_parameters"]
    ('gpu', 120, 2, 8, {'exclude': 'n3'})

    A ``time`` in ``sbatch`` is the job's (``time_setting``), and submitit must know it: at the
    warning signal it tells a job near its time limit (fail) from a preempted one (requeue) by
    ``timeout_min``, so with another value a job at its limit was requeued again and again.

    >>> sbatch_parameters({"sbatch": {"time": "2:00:00"}}, "sft", 1, 0, 1)["timeout_min"]
    120
    """
    params = dict(name=f"ragline-{step}",
                  timeout_min=time_minutes(time_setting(cfg)[1]),
                  cpus_per_task=int(cfg.get("cpus_per_task") or 1), nodes=nodes, tasks_per_node=1,
                  slurm_array_parallelism=array_parallelism,
                  slurm_signal_delay_s=SIGNAL_DELAY_S)
    if gpus_per_node:
        params["gpus_per_node"] = gpus_per_node
    if cfg.get("mem_gb"):
        params["mem_gb"] = cfg["mem_gb"]
    for key in ("partition", "account", "qos", "constraint"):
        if cfg.get(key):
            params[f"slurm_{key}"] = cfg[key]
    if cfg.get("setup"):
        params["slurm_setup"] = list(cfg["setup"])
    extra = {**(cfg.get("extra") or {}), **(cfg.get("sbatch") or {})}
    extra.pop("time", None)                # timeout_min above is it
    if extra:
        params["slurm_additional_parameters"] = {str(k).replace("-", "_"): v for k, v in extra.items()}
    return params
