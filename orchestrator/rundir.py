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
    runs/latest -> the newest run
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

from orchestrator.artifacts import Ref


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunDir:
    def __init__(self, path: Path, recipe: Path, overrides: list[str], command: str):
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "logs").mkdir(exist_ok=True)
        self.status = {"run": str(path), "recipe": str(recipe), "overrides": overrides,
                       "command": command, "state": "running", "started": time.time(),
                       "finished": None, "steps": {}, "metrics": {}}
        (self.path / "overrides.txt").write_text("".join(f"{o}\n" for o in overrides))
        (self.path / "command.txt").write_text(command + "\n")
        self.save()

    @staticmethod
    def new_path(runs_dir: Path, recipe: Path, sweep: Path | None = None, member: int = 0) -> Path:
        if sweep is not None:
            return sweep / f"member-{member:04d}"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(runs_dir) / recipe.stem / stamp
        n = 1
        while path.exists():
            n += 1
            path = Path(runs_dir) / recipe.stem / f"{stamp}-{n}"
        return path

    def write_config(self, config: dict) -> None:
        import yaml

        (self.path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def write_plan(self, plan_json: dict) -> None:
        _atomic_write(self.path / "plan.json", json.dumps(plan_json, indent=1))

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
            for i, part in enumerate(ref.paths):
                os.symlink(Path(part).parent, link / f"shard-{i:05d}")
            return
        target = Path(ref.paths[0]) if ref.kind == "dir" else Path(ref.paths[0]).parent
        os.symlink(target, link)

    def add_metrics(self, step: str, values: dict) -> None:
        self.status["metrics"][step] = values

    def finish(self, ok: bool) -> None:
        self.status["state"] = "ok" if ok else "failed"
        self.status["finished"] = time.time()
        _atomic_write(self.path / "metrics.json", json.dumps(self.status["metrics"], indent=2) + "\n")
        self.save()
        depth = 3 if self.path.name.startswith("member-") else 2
        latest = self.path.parents[depth - 1] / "latest"
        try:
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            os.symlink(os.path.relpath(self.path, latest.parent), latest)
        except OSError:
            pass

    def save(self) -> None:
        _atomic_write(self.path / "status.json", json.dumps(self.status, indent=1, default=str))


def shell_command(argv: list[str] | None = None) -> str:
    """The command line of this process as a user would type it (``rag run ...``)."""
    argv = list(sys.argv if argv is None else argv)
    prog = "rag" if argv and Path(argv[0]).name in ("rag", "__main__.py", "cli.py") else argv[0]
    if not argv:
        return "rag"
    return " ".join([prog] + [shlex.quote(a) for a in argv[1:]])
