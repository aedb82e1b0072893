"""Run records: one directory per ``rag run`` (per sweep member) under ``runs/``.

    runs/<recipe>/<time>/
      config.yaml        the composed config (interpolations resolved)
      overrides.txt      the command-line overrides, one per line
      command.txt        the exact command, to rerun or resume
      plan.json          the plan at start
      status.json        machine-readable state of every step (updated as steps finish)
      metrics.json       the metrics of every step that writes metrics
      logs/<step>.log    one log per task (shards: <step>.shard-00003.log)
      artifacts/<step>.<output> -> the artifact in the cache
    runs/latest -> the newest run (set when a run starts, so a killed first run is found)

``status.json`` records the run's pid and host. A record still ``running`` whose process is gone
(killed with SIGKILL, a machine reboot) reads as ``interrupted`` (``effective_state``).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path

from orchestrator.artifacts import Ref
from orchestrator.atomic import write_text


class RunDir:
    def __init__(self, path: Path, recipe: Path, overrides: list[str], command: str,
                 runs: Path | None = None):
        # absolute: the record's paths (the run, each step's log) read the same from any
        # directory, and a worker started elsewhere (SLURM, Ray) finds its log
        self.path = Path(os.path.abspath(path))
        self.runs = runs  # artifact links into a cache inside it are relative: mv runs keeps them
        self._real_runs: str | None = None   # realpath of runs, made once
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "logs").mkdir(exist_ok=True)
        self.status = {"run": str(self.path), "recipe": str(recipe), "overrides": overrides,
                       "command": command, "cwd": os.getcwd(), "state": "running",
                       "started": time.time(),
                       "finished": None, "pid": os.getpid(), "host": socket.gethostname(),
                       "steps": {}, "metrics": {}}
        (self.path / "overrides.txt").write_text("".join(f"{o}\n" for o in overrides))
        (self.path / "command.txt").write_text(command + "\n")
        self.save()
        self._set_latest()

    @staticmethod
    def new_path(runs_dir: Path, recipe: Path, sweep: Path | None = None, member: int = 0) -> Path:
        if sweep is not None:
            return sweep / f"member-{member:04d}"
        # claimed by creating it: two runs started in the same second (two terminals, a
        # scheduler) get different directories, never one shared by both
        stamp = time.strftime("%Y%m%d-%H%M%S")
        parent = Path(runs_dir) / recipe.stem
        parent.mkdir(parents=True, exist_ok=True)
        n = 1
        while True:
            path = parent / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                n += 1

    def write_config(self, config: dict, text: str | None = None) -> None:
        """``config.yaml``; ``text``: ``config_yaml(config)`` when the caller has it already (a
        remembered composition does, so a no-op rerun never imports yaml)."""
        (self.path / "config.yaml").write_text(config_yaml(config) if text is None else text)

    def write_plan(self, plan_json: dict) -> None:
        write_text(self.path / "plan.json", json.dumps(plan_json, indent=1))

    def log_path(self, step: str, shard: tuple[int, int] | None) -> Path:
        name = step if shard is None else f"{step}.shard-{shard[0]:05d}"
        return self.path / "logs" / f"{name}.log"

    def set_step(self, step: str, save: bool = True, **fields) -> None:
        self.status["steps"].setdefault(step, {}).update(fields)
        if save:
            self.save()

    def link(self, step: str, output: str, ref: Ref) -> None:
        """``artifacts/<step>.<output>``: a link to the cached artifact (shards: a folder of links)."""
        import shutil

        links = self.path / "artifacts"
        links.mkdir(exist_ok=True)
        link = links / f"{step}.{output}"
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        if ref.kind == "table" and len(ref.paths) > 1:
            link.mkdir()
            real_link = os.path.realpath(link)   # once, not per shard
            for i, part in enumerate(ref.paths):
                os.symlink(self._target(Path(part).parent, link, real_link),
                           link / f"shard-{i:05d}")
            return
        target = Path(ref.paths[0]) if ref.kind == "dir" else Path(ref.paths[0]).parent
        os.symlink(self._target(target, links), link)

    def _target(self, target: Path, where: Path, real_where: str | None = None) -> str:
        """``target`` relative to the link's folder ``where`` (``real_where``: its realpath,
        when known) when both lie in the runs directory (its default ``cache/``), so the runs
        directory can be moved whole; else absolute (a cache elsewhere, ``$RAGLINE_CACHE``,
        stays where it is)."""
        if self.runs is not None:
            if self._real_runs is None:
                self._real_runs = os.path.realpath(self.runs)
            runs = self._real_runs
            real = os.path.realpath(target)
            real_where = real_where or os.path.realpath(where)
            if real.startswith(runs + os.sep) and real_where.startswith(runs + os.sep):
                return os.path.relpath(real, real_where)
        return str(target)

    def add_metrics(self, step: str, values: dict) -> None:
        self.status["metrics"][step] = values

    def set_run(self, **fields) -> None:
        """Run-level fields of status.json (e.g. the executor)."""
        self.status.update(fields)
        self.save()

    def finish(self, ok: bool) -> None:
        self.status["state"] = "ok" if ok else "failed"
        self.status["finished"] = time.time()
        write_text(self.path / "metrics.json", json.dumps(self.status["metrics"], indent=2) + "\n")
        self.save()
        self._set_latest()

    def interrupt(self, reason: str = "interrupted", state: str = "interrupted") -> None:
        """Ctrl-C or SIGTERM (or an internal error, ``state="failed"``): the run and its running
        steps are no longer ``running``."""
        for step in self.status["steps"].values():
            if step.get("state") == "running":
                step["state"] = "interrupted"
        self.status.update(state=state, finished=time.time(), reason=reason)
        try:
            self.save()
        except OSError:  # a full or read-only disk: readers see the dead pid instead
            pass

    def _set_latest(self) -> None:
        depth = 3 if self.path.name.startswith("member-") else 2
        latest = self.path.parents[depth - 1] / "latest"
        try:
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            os.symlink(os.path.relpath(self.path, latest.parent), latest)
        except OSError:
            pass

    def save(self) -> None:
        write_text(self.path / "status.json", json.dumps(self.status, indent=1, default=str))


def config_yaml(config: dict) -> str:
    """The text of a run's ``config.yaml``.

    >>> print(config_yaml({"steps": {"a": {"stage": "gen", "n": 2}}}), end="")
    steps:
      a:
        stage: gen
        n: 2
    """
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def effective_state(status: dict) -> str:
    """A run's state, with ``running`` read as ``interrupted`` when its process is gone.

    >>> effective_state({"state": "running", "pid": 2 ** 22 + 7, "host": socket.gethostname()})
    'interrupted'
    """
    state = status.get("state", "running")
    pid, host = status.get("pid"), status.get("host")
    if state != "running" or not pid or host != socket.gethostname():
        return state
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:
        return state
    return state if _same_process(int(pid), status.get("started")) else "interrupted"


def _same_process(pid: int, started: float | None) -> bool:
    """The live ``pid`` is the run's own process, not a later one given the same number."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return True
    begun = boot + ticks / os.sysconf("SC_CLK_TCK")
    return started is None or begun <= float(started) + 5


def shell_command(argv: list[str] | None = None) -> str:
    """The command line of this process as a user would type it (``rag run ...``)."""
    argv = list(sys.argv if argv is None else argv)
    prog = "rag" if argv and Path(argv[0]).name in ("rag", "__main__.py", "cli.py") else argv[0]
    if not argv:
        return "rag"
    return " ".join([prog] + [shlex.quote(a) for a in argv[1:]])
