"""The content-addressed store: one entry per task key, written atomically, filled once.

Layout under the cache root (``runs/cache`` or ``$RAGLINE_CACHE``)::

    objects/ab/abcdef…/        a committed entry: _entry.json + outputs/<name>/ (+ _manifest.json)
    tmp/<key>.<pid>.<rand>/    an entry being written; renamed into objects/ when complete
    locks/<key>.lock           single flight: one process computes a key, the others wait
    scratch/<key>/             survives a crash of the task (trainer checkpoints); removed on commit
    gather/<hash>/             directory outputs of sharded steps: shard-00000 -> entry links

An entry directory exists only once every output is written and hashed, so a killed task leaves
nothing that looks complete; its temporary directory is removed by ``rag gc``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from orchestrator.artifacts import Ref
from orchestrator.hashing import hash_strings


@dataclass
class Entry:
    key: str
    path: Path
    meta: dict

    def outputs(self) -> dict[str, Ref]:
        refs = {}
        for name, r in self.meta["outputs"].items():
            refs[name] = Ref(**{**r, "paths": [str(self.path / p) for p in r["paths"]]})
        return refs


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self._seen: dict[str, Entry | None] | None = None

    def remember_lookups(self) -> None:
        """Memoise lookups from now on (planning many sweep members reads each key once)."""
        self._seen = {}

    @classmethod
    def for_runs(cls, runs_dir: str | Path) -> "Store":
        return cls(os.environ.get("RAGLINE_CACHE") or Path(runs_dir) / "cache")

    def entry_path(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    def lookup(self, key: str) -> Entry | None:
        if self._seen is not None and key in self._seen:
            return self._seen[key]
        entry = self._lookup(key)
        if self._seen is not None:
            self._seen[key] = entry
        return entry

    def _lookup(self, key: str) -> Entry | None:
        path = self.entry_path(key)
        try:
            meta = json.loads((path / "_entry.json").read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        return Entry(key, path, meta)

    def has(self, key: str) -> bool:
        return (self.entry_path(key) / "_entry.json").is_file()

    def lock(self, key: str):
        from filelock import FileLock

        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / "locks" / f"{key}.lock"))

    def new_tmp(self, key: str) -> Path:
        path = self.root / "tmp" / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def scratch(self, key: str) -> Path:
        return self.root / "scratch" / key

    def commit(self, tmp: Path, key: str, meta: dict) -> Entry:
        """Write ``_entry.json`` last, then rename the temporary directory into place."""
        tmp_root = str(tmp)
        meta = {**meta, "outputs": {
            n: {**r, "paths": [os.path.relpath(p, tmp_root) for p in r["paths"]]}
            for n, r in meta["outputs"].items()}}
        (tmp / "_entry.json").write_text(json.dumps(meta, indent=1))
        final = self.entry_path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if final.exists():  # --force: swap the old entry out, then delete it
            old = final.with_name(f"{key}.old.{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.scratch(key), ignore_errors=True)
        return Entry(key, final, json.loads((final / "_entry.json").read_text()))

    def gather_dir(self, parts: list[Ref]) -> Path:
        """One directory whose ``shard-0000k`` entries link to the shards' directory outputs."""
        digest = hash_strings([r.content_hash for r in parts])
        final = self.root / "gather" / digest
        if final.is_dir():
            return final
        tmp = self.root / "tmp" / f"gather.{digest}.{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        for i, ref in enumerate(parts):
            os.symlink(ref.paths[0], tmp / f"shard-{i:05d}")
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, final)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def entries(self):
        base = self.root / "objects"
        if not base.is_dir():
            return
        for prefix in base.iterdir():
            for path in prefix.iterdir():
                if (path / "_entry.json").is_file():
                    yield path

    def stale_tmp(self, older_than_s: float = 0) -> list[Path]:
        """Temporary directories whose writer process is gone (or older than the limit)."""
        out = []
        tmp = self.root / "tmp"
        if not tmp.is_dir():
            return out
        now = time.time()
        for path in tmp.iterdir():
            if path.name == "tasks":
                continue
            parts = path.name.split(".")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
            alive = pid is not None and _alive(pid)
            if not alive or now - path.stat().st_mtime > older_than_s > 0:
                out.append(path)
        return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
