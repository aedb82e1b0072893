"""Who is using the cache: lock holders and live runs (pid, host, heartbeat).

``StoreLock`` is a ``filelock.FileLock`` that writes its holder beside the lock file
(``<key>.lock.holder``: pid, host, since, what). A blocking acquire logs, every
``RAGLINE_LOCK_NOTE_S`` seconds (default 30)::

    waiting for retrieve shard 2/8, held by pid 4242 on host gpu3 since 12:01

and breaks the lock when its recorded holder is a dead process on this host (seen dead twice in a
row): the kernel frees a ``flock`` when its holder dies, so a lock still held then belongs to a
process that inherited the descriptor, or to a filesystem without ``flock``. "This host" is the
host name and the PID namespace (:data:`PLACE`): containers that share a host name have their
own pids, and a pid of another one says nothing here.

``Lease`` marks a run live for ``rag gc``: ``leases/<host>.<pid>.<rand>.json`` lists the run
directories; a thread touches the file every ``RAGLINE_LEASE_HEARTBEAT_S`` seconds (default 15).
A lease is live while its process runs (same host) or its heartbeat is fresh (another host);
``rag gc`` keeps what a run on another host uses for an hour after its heartbeat stops (a
suspended process, a paused VM), then lets it go.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from pathlib import Path

from orchestrator.atomic import write_text
from orchestrator.hashing import key_of

log = logging.getLogger("ragline")
HOST = socket.gethostname()


def _place() -> str:
    """This host and PID namespace: where a pid means this process table. Two containers
    sharing a hostname (``--network host``) have their own tables: a pid there is not one here.
    """
    try:
        return f"{HOST}~{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return HOST


PLACE = _place()
PLACE_ID = key_of(PLACE)[:8]   # in file names: <what>.<pid>.<rand>-<PLACE_ID>
LEASE_GRACE_S = 3600   # gc keeps what a silent run on another host uses this long (suspended?)


def here(record: dict) -> bool:
    """Whether a holder or lease record was written in this host's PID namespace (records
    written before they named it: by host name).

    >>> here({"where": PLACE, "host": "x"}), here({"where": "elsewhere~1"}), here({"host": HOST})
    (True, False, True)
    """
    return record.get("where") == PLACE if "where" in record else record.get("host") == HOST


def pid_of_here(name: str) -> int | None:
    """The pid in a file name ``<...>.<pid>.<rand>[-<place id>]`` when the name was made in this
    PID namespace (or names none: made before names carried it), else None.

    >>> pid_of_here(f"k.12.ab-{PLACE_ID}"), pid_of_here("k.12.ab"), pid_of_here("k.12.ab-0000")
    (12, 12, None)
    """
    parts = name.split(".")
    if len(parts) < 3 or not parts[-2].isdigit():
        return None
    _, _, place = parts[-1].partition("-")
    return int(parts[-2]) if place in ("", PLACE_ID) else None


def tmp_name(key: str) -> str:
    """A temporary directory's name for ``key``, made by this process (``rag gc`` tells from it
    whether its writer is still running here)."""
    return f"{key}.{os.getpid()}.{os.urandom(4).hex()}-{PLACE_ID}"


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def read_json(path: Path) -> dict | None:
    """A small JSON object, or None when the file is absent, partial or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _note_interval() -> float:
    return float(os.environ.get("RAGLINE_LOCK_NOTE_S") or 30)


class StoreLock:
    """A FileLock with holder info and "waiting for ..." lines; usable as a context manager."""

    def __init__(self, path: Path, what: str):
        from filelock import FileLock

        self.path, self.what = Path(path), what
        self.holder_path = self.path.with_name(self.path.name + ".holder")
        self._lock = FileLock(str(self.path))

    def acquire(self, timeout: float | None = None) -> "StoreLock":
        """Take the lock; ``timeout`` >= 0 raises ``filelock.Timeout`` after that many seconds."""
        if timeout is not None and timeout >= 0:
            self._lock.acquire(timeout=timeout)
        else:
            self._wait()
        since = time.time()
        holder = {"pid": os.getpid(), "host": HOST, "where": PLACE, "since": since,
                  "what": self.what}
        try:
            self.holder_path.write_text(json.dumps(holder))
        except OSError:
            pass  # a read-only cache: the holder line is a courtesy
        return self

    def _wait(self) -> None:
        from filelock import FileLock, Timeout

        dead_checks = 0
        while True:
            try:
                self._lock.acquire(timeout=_note_interval())
                return
            except Timeout:
                holder = read_json(self.holder_path) or {}
                log.warning("%s", waiting_line(self.what, holder))
                dead = here(holder) and isinstance(holder.get("pid"), int) \
                    and not alive(holder["pid"])
                dead_checks = dead_checks + 1 if dead else 0
                if dead_checks >= 2:
                    log.warning("breaking the lock of %s: its holder pid %s on host %s is gone",
                                self.what, holder["pid"], HOST)
                    for p in (self.path, self.holder_path):
                        p.unlink(missing_ok=True)
                    self._lock = FileLock(str(self.path))
                    dead_checks = 0

    def release(self) -> None:
        holder = read_json(self.holder_path) or {}
        if holder.get("pid") == os.getpid() and here(holder):
            try:
                self.holder_path.unlink(missing_ok=True)
            except OSError:
                pass
        self._lock.release()

    @property
    def is_locked(self) -> bool:
        return self._lock.is_locked

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def waiting_line(what: str, holder: dict) -> str:
    """The line a waiting run prints.

    >>> waiting_line("retrieve shard 2/8", {"pid": 4242, "host": "gpu3", "since": 0})[:58]
    'waiting for retrieve shard 2/8, held by pid 4242 on host g'
    """
    if not holder:
        return f"waiting for {what}, held by another process (no holder recorded yet)"
    since = time.strftime("%H:%M", time.localtime(holder.get("since") or 0))
    return f"waiting for {what}, held by pid {holder.get('pid')} on host {holder.get('host')} since {since}"


def _heartbeat_s() -> float:
    return float(os.environ.get("RAGLINE_LEASE_HEARTBEAT_S") or 15)


class Lease:
    """A live run on this cache; see the module docstring."""

    def __init__(self, cache_root: Path, runs_dir: Path):
        self.root = cache_root
        self.runs_dir = Path(runs_dir).resolve()
        self.interval = _heartbeat_s()
        self.path = (cache_root / "leases" /
                     f"{HOST}.{os.getpid()}.{os.urandom(3).hex()}-{PLACE_ID}.json")
        self.runs: list[str] = []
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_run(self, run_path: str | Path) -> None:
        """A run record (``runs/<recipe>/<time>``) of this process: gc keeps what it uses."""
        self.runs.append(str(Path(run_path).resolve()))
        self._write()

    def _write(self) -> None:
        data = {"pid": os.getpid(), "host": HOST, "where": PLACE, "started": self.started,
                "interval": self.interval, "runs_dir": str(self.runs_dir), "runs": self.runs}
        try:
            write_text(self.path, json.dumps(data))
        except OSError:
            pass  # a read-only cache serves cached runs; nothing of it can be collected either

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def __enter__(self) -> "Lease":
        register_runs_dir(self.root, self.runs_dir)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return self
        self._write()
        self._thread = threading.Thread(target=self._beat, name="ragline-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only cache: EROFS even for a file that was never written


def register_runs_dir(cache_root: Path, runs_dir: Path) -> None:
    """Remember that ``runs_dir`` uses this cache (``rag gc`` keeps its runs' entries)."""
    runs_dir = Path(runs_dir).resolve()
    path = cache_root / "runs-dirs" / f"{key_of(str(runs_dir))[:16]}.json"
    if path.is_file() and isinstance((read_json(path) or {}).get("path"), str):
        return   # (a damaged one is written again: until then gc removes no entry)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps({"path": str(runs_dir), "host": HOST}))
    except OSError:
        pass


def registered_runs_dirs(cache_root: Path) -> list[tuple[Path, str]]:
    """(runs directory, host that registered it) for every runs directory using this cache."""
    base = cache_root / "runs-dirs"
    out = []
    for f in sorted(base.glob("*.json")) if base.is_dir() else []:
        data = read_json(f)
        if data and isinstance(data.get("path"), str):
            out.append((Path(data["path"]), str(data.get("host") or HOST)))
    return out


STALE_DAMAGED_LEASE_S = 86400   # a lease unreadable for a day belongs to no run still going


def unreadable(cache_root: Path, own: Path | None = None) -> tuple[list[Path], list[Path]]:
    """(files that hide what gc must keep, damaged leases to remove): registrations of runs
    directories and leases of live runs that cannot be read (partial, damaged). While one of the
    first is there, nobody can say which entries its runs use. The registration of ``own`` (the
    runs directory gc was given, whose runs it reads anyway) hides nothing; a lease is dead when
    unreadable for a day, or when its name's pid on this host is gone."""
    hiding, stale = [], []
    now = time.time()
    mine = f"{key_of(str(Path(own).resolve()))[:16]}.json" if own is not None else None
    for sub in ("runs-dirs", "leases"):
        base = cache_root / sub
        for f in sorted(base.glob("*.json")) if base.is_dir() else []:
            data = read_json(f)
            if data is not None and (sub == "leases" or isinstance(data.get("path"), str)):
                continue
            if sub == "runs-dirs" and f.name == mine:
                continue
            try:
                old = sub == "leases" and (now - f.stat().st_mtime > STALE_DAMAGED_LEASE_S
                                           or _dead_here(f.name))
            except OSError:
                continue
            (stale if old else hiding).append(f)
    return hiding, stale


def _dead_here(lease_name: str) -> bool:
    """Whether a lease file's name (``<host>.<pid>.<rand>-<place id>.json``) names a pid of this
    host's PID namespace that is gone.

    >>> _dead_here(f"{HOST}.{os.getpid()}.ab12cd-{PLACE_ID}.json")
    False
    >>> _dead_here("elsewhere.1.ab12cd.json"), _dead_here(f"{HOST}.1.ab12cd-00000000.json")
    (False, False)
    """
    stem = lease_name[:-len(".json")] if lease_name.endswith(".json") else lease_name
    host = stem.rsplit(".", 2)[0]
    pid = pid_of_here(stem)
    return host == HOST and pid is not None and not alive(pid)


def live_leases(cache_root: Path) -> list[dict]:
    """The leases of runs still going (their files; stale ones are left for gc to remove)."""
    base = cache_root / "leases"
    out = []
    now = time.time()
    for f in sorted(base.glob("*.json")) if base.is_dir() else []:
        data = read_json(f)
        if data is None:
            continue
        data["file"] = str(f)
        data["silent_s"] = 0.0
        if here(data):
            ok = isinstance(data.get("pid"), int) and alive(data["pid"])
        else:   # another host: its heartbeat; one silent longer (suspended, a VM paused, an
            try:   # NFS stall) keeps what it uses for LEASE_GRACE_S, then it is let go
                silent = now - f.stat().st_mtime
            except OSError:
                silent = math.inf
            beat = 4 * float(data.get("interval") or 15)
            ok = silent < max(beat, LEASE_GRACE_S)
            data["silent_s"] = silent if silent >= beat else 0.0
        data["live"] = ok
        out.append(data)
    return out
