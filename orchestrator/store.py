"""The content-addressed store: one entry per task key, written atomically, filled once, checked on
every hit.

Layout under the cache root (``runs/cache`` or ``$RAGLINE_CACHE``)::

    objects/ab/abcdef…/        a committed entry: _entry.json + outputs/<name>/ (+ _manifest.json)
    tmp/<key>.<pid>.<rand>/    an entry being written; renamed into objects/ when complete
    locks/<key>.lock           single flight: one process computes a key, the others wait
    locks/<key>.lock.holder    who holds it: pid, host, since, what (for "waiting for ..." lines)
    scratch/<key>/             survives a crash of the task (trainer checkpoints, request caches);
                               removed on commit. A sharded step's shards share the unsharded
                               task's key here (keys.scratch_key), removed once all have committed
    answers/<endpoint>/        paid LLM answers by request, shared by every step (rag gc removes
                               those unused for --keep-answers-days)
    gather/<hash>/             directory outputs of sharded steps: shard-00000 -> entry links
    quarantine/<key>.<time>/   entries found changed or damaged: moved here, never silently deleted
    leases/<host>.<pid>.….json a live run using this cache (heartbeat: the file's mtime)
    runs-dirs/<hash>.json      every runs directory that ever used this cache (gc reads them all)

An entry directory exists only once every output is written and hashed, so a killed task leaves
nothing that looks complete. ``_entry.json`` records the size and mtime_ns of every file (and the
mtime_ns of every directory) of the entry, and committed files are made read-only. A lookup
stats them all: a file deleted, added or of another size makes the entry a miss and moves it to
``quarantine/``. That costs a few stat calls per entry, never a read of artifact bytes; a process
stats an entry's files once, then one stat of its ``_entry.json`` (a sweep of 50 members on a
20,000-file upstream statted them 100 times). Where
only mtimes differ (a copy without timestamps, a touch) the entry is hashed again once
(``recheck.py``): the same content is kept and its new stats recorded, any other is quarantined.
``rag verify`` re-hashes every entry.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.artifacts import Ref
from orchestrator.errors import FULL_DISK_HINT, OTHER_DISK_HINT, ConfigError, same_disk
from orchestrator.hashing import hash_strings
from orchestrator.leases import LEASE_GRACE_S, Lease, StoreLock, alive, pid_of_here, tmp_name

log = logging.getLogger("ragline")
ENTRY = "_entry.json"
QUARANTINE_NOTE = "_quarantine.json"
HASHED_AFTER_FAILURE = "hashed again after step"   # check_content's quarantine reasons say so
QUARANTINE_WAIT_S = 10.0   # set_aside waits this long for a key's lock (a move takes ms)


@dataclass
class Entry:
    key: str
    path: Path
    meta: dict
    files: dict | None = None  # relative path -> [size or None for a directory, mtime_ns]
    refs: dict | None = field(default=None, repr=False, compare=False)  # outputs(), once
    stamp: tuple | None = field(default=None, repr=False, compare=False)  # _entry.json as read

    def outputs(self) -> dict[str, Ref]:
        """The entry's output Refs (made once per Entry: a sweep's members share its lookups)."""
        if self.refs is None:
            self.refs = {name: Ref(**{**r, "paths": [str(self.path / p) for p in r["paths"]]})
                         for name, r in self.meta["outputs"].items()}
        return dict(self.refs)


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self._seen: dict[str, Entry | None] | None = None
        # entries whose files this process stat-checked, and when: trusted while their
        # _entry.json is unchanged, if checked since ``trusted_since`` (recheck_before)
        self._checked: dict[str, tuple[Entry, float]] = {}
        self._outputs: dict[str, tuple] = {}   # key -> (stamp, {output: content hash})
        self.trusted_since = 0.0
        self._gathered: set[str] = set()       # gather directories this process checked
        self.misses: dict[str, str] = {}  # key -> why its entry was not usable (this process)
        self._quarantined: dict[str, list[Path]] | None = None   # key -> folders, listed once
        self._writable = False  # check_usable(probe=True) passed once (a sweep probes once)

    def remember_lookups(self) -> None:
        """Memoise lookups from now on (planning many sweep members reads each key once)."""
        self._seen = {}

    @classmethod
    def for_runs(cls, runs_dir: str | Path) -> "Store":
        from orchestrator.locate import cache_root

        return cls(cache_root(runs_dir))

    def check_usable(self, runs_dir: str | Path, probe: bool = True) -> None:
        """Refuse (``ConfigError``) a cache root that is not, and cannot be made, a directory;
        with ``probe``, one where a file cannot be written (read-only, full, no permission).
        Without ``probe`` a read-only cache still serves a run whose steps are all cached."""
        if self._writable:
            return
        if os.environ.get("RAGLINE_CACHE"):
            hint = "set RAGLINE_CACHE to a writable directory"
        else:
            hint = (f"the cache is {Path(runs_dir) / 'cache'}: point --runs-dir (or "
                    "ragline.runs_dir in the recipe) at a writable directory, or set RAGLINE_CACHE "
                    "to one")
        check_dir(self.root, "cache directory", hint, probe)
        self._writable = probe

    def entry_path(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    # ------------------------------------------------------------ lookups, checked on every hit

    def lookup(self, key: str, step: str = "") -> Entry | None:
        """The committed entry of ``key``, or None. A damaged or changed entry is a miss: it is
        quarantined and ``miss_reason(key)`` says why; ``step`` names it in the warning when
        its own metadata cannot."""
        if self._seen is not None and key in self._seen:
            return self._seen[key]
        known, when = self._checked.get(key, (None, 0.0))   # checked file by file once:
        if known is not None and when >= self.trusted_since and self.unchanged(known):
            return known    # trusted while its _entry.json is (a sweep's members share them)
        entry = self._lookup(key, step)
        if entry is not None:
            self._checked[key] = (entry, time.monotonic())
        if self._seen is not None:
            self._seen[key] = entry
        return entry

    def recheck_before(self, mark: float) -> bool:
        """Check file by file again the entries last checked before ``mark`` (``time.monotonic``):
        a sweep member that computes something looks at its inputs afresh, so damage done since
        an earlier member checked them is found (and the damaged entry recomputed) before its
        stages run; a no-op member trusts them. Whether any was checked before ``mark``."""
        self.trusted_since = mark
        return any(when < mark for _, when in self._checked.values())

    def unchanged(self, entry: Entry) -> bool:
        """Whether ``entry`` (checked by ``lookup`` earlier in this process) is still the
        committed one: its ``_entry.json`` is the same file, same size and mtime (a ``--force``
        elsewhere commits a new one). One stat, where ``lookup`` stats every file again."""
        return entry.stamp is not None and entry_stamp(entry.path) == entry.stamp

    def stamp(self, key: str) -> tuple | None:
        """The identity of ``key``'s committed ``_entry.json`` (what ``Entry.stamp`` holds as
        read), or None when there is none: a commit changes it."""
        return entry_stamp(self.entry_path(key))

    def output_hash(self, key: str, output: str) -> str | None:
        """The content hash of ``output`` in ``key``'s committed entry, or None (no entry, a
        damaged one, no such output). ``_entry.json`` is read again only when it is another
        file than last time (one stat): every shard of a step asks this of each entry it reads.
        """
        file = f"{self.root}{os.sep}objects{os.sep}{key[:2]}{os.sep}{key}{os.sep}{ENTRY}"
        try:
            st = os.stat(file)
        except OSError:
            return None
        known = self._outputs.get(key)
        if known is None or known[0] != (st.st_ino, st.st_size, st.st_mtime_ns):
            entry, _ = read_entry(self.entry_path(key), key)
            if entry is None:
                return None
            outputs = entry.meta.get("outputs") or {}
            known = (entry.stamp, {n: (o.get("content_hash", "") if isinstance(o, dict) else "")
                                   for n, o in outputs.items()})
            self._outputs[key] = known
        return known[1].get(output)

    def has(self, key: str) -> bool:
        return self.lookup(key) is not None

    def _lookup(self, key: str, step: str) -> Entry | None:
        path = self.entry_path(key)
        for _ in range(2):  # a second look when a concurrent --force swapped the entry meanwhile
            entry, problem = read_entry(path, key)
            if problem is None:
                problem = self.recheck(entry, changed_file(entry))
                if problem is None:
                    return entry
                problem = f"artifact changed on disk after commit: {problem}"
            if entry is None and problem == "":
                return None
            again, _ = read_entry(path, key)
            if entry is None or again is None or again.meta == entry.meta:
                break
        self.quarantine(key, path, problem, (entry.meta.get("step", "") if entry else "") or step)
        return None

    def miss_reason(self, key: str) -> str | None:
        """Why ``key`` missed: found damaged by this process, or an earlier quarantine note."""
        if key in self.misses:
            return self.misses[key]
        if self._quarantined is None:   # listed once: a plan asks for every key it misses
            self._quarantined = {}
            qdir = self.root / "quarantine"
            for path in qdir.iterdir() if qdir.is_dir() else ():
                self._quarantined.setdefault(path.name.split(".", 1)[0], []).append(path)
        for path in sorted(self._quarantined.get(key, ()), reverse=True):
            try:
                return json.loads((path / QUARANTINE_NOTE).read_text())["reason"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return None

    def check_intact(self, ref: Ref) -> str | None:
        """None when the cache entries holding ``ref`` are unchanged since their commit, else the
        path of the first changed file (the entry is quarantined). Refs outside the cache: None.

        Called after a stage ran, on each of its inputs: a stage that wrote into an input is caught.
        """
        for key in self.keys_of(ref):
            path = self.entry_path(key)
            entry, problem = read_entry(path, key)
            if entry is None:
                if problem:
                    self.quarantine(key, path, problem, "")
                    return str(path / ENTRY)
                return str(path)  # the entry is gone (quarantined or removed meanwhile)
            changed = self.recheck(entry, changed_file(entry))
            if changed is not None:
                self.quarantine(key, path, f"artifact changed on disk after commit: {changed}",
                                 entry.meta.get("step", ""))
                return str(path / changed)
        return None

    def check_content(self, ref: Ref, step: str) -> tuple[str, str, bool] | None:
        """``check_intact`` with every file of the entries holding ``ref`` hashed again, so a
        change that kept each size and mtime (bit rot, a rewrite put back) is found too: it
        reads every byte, so only a step that failed as damaged bytes make a reader fail asks.
        (the file that differs, the step that committed it, whether its entry was moved to
        ``quarantine/``), or None. ``step`` (the reader) names who found it."""
        from orchestrator.recheck import content_problem

        for key in self.keys_of(ref):
            path = self.entry_path(key)
            entry, _ = read_entry(path, key)
            if entry is None or entry.files is None:
                continue    # gone, or damaged metadata: the stat check (check_intact) says so
            try:
                problem = content_problem(entry, file_table(path))
            except OSError as e:   # a bad sector is damage; anything else is not ours to judge
                if e.errno != errno.EIO:
                    continue
                rel = os.path.relpath(e.filename, path) if e.filename else "outputs"
                problem = f"{rel} (unreadable: {e.strerror})"
            if problem is None:
                continue
            producer = entry.meta.get("step", "") or ref.producer.split(".")[0]
            self.set_aside(key, entry, f"artifact changed on disk after commit: {problem} "
                                       f"({HASHED_AFTER_FAILURE} '{step}' failed reading it)",
                           producer)
            return str(path / problem), producer, self.stamp(key) != entry.stamp
        return None

    def recheck(self, entry: Entry, changed: str | None) -> str | None:
        """``changed`` (``changed_file``'s answer) unless only timestamps changed: then the entry
        is re-hashed (``orchestrator/recheck.py``), its stat table recorded again and None
        returned; when its content differs too, the first file that changed."""
        if changed is None or entry.files is None or changed.endswith("(deleted)"):
            return changed
        from orchestrator.recheck import content_problem

        try:
            now = file_table(entry.path)
            problem = content_problem(entry, now)
        except OSError as e:   # removed meanwhile (a gc), unreadable: a miss, as any change
            return f"{changed} (cannot be read again: {e.strerror or e})"
        if problem is not None:
            return problem
        kept = self._restamp(entry, now)
        entry.files = now
        log.warning("cache entry %s of step '%s': its files have new timestamps (a copy or a "
                    "touch: %s), and their content, hashed again, is the committed one: kept "
                    "(timestamps %s)", entry.key[:12], entry.meta.get("step", "?"), changed, kept)
        return None

    def _restamp(self, entry: Entry, now: dict) -> str:
        """Record ``now`` as ``entry``'s stat table, under the key's lock and only while
        ``_entry.json`` is still the file the lookup read (a ``--force`` elsewhere commits
        under the same lock): "recorded", or "not recorded: why"."""
        from filelock import Timeout

        from orchestrator.recheck import restamp

        try:
            lock = self.lock(entry.key, f"key {entry.key[:12]} (re-stamp)").acquire(timeout=0)
        except Timeout:
            return "not recorded: another process holds its key"
        except OSError:
            return "not recorded: the cache is read-only"
        try:
            st = os.stat(entry.path / ENTRY)
            if (st.st_ino, st.st_size, st.st_mtime_ns) != entry.stamp:
                return "not recorded: the entry was committed again meanwhile"
            if not restamp(entry, now, self.root / "tmp"):
                return "not recorded: the cache is read-only"
            st = os.stat(entry.path / ENTRY)
            entry.stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            return "recorded"
        except OSError as e:
            return f"not recorded: {e.strerror or e}"
        finally:
            lock.release()

    def keys_of(self, ref: Ref) -> list[str]:
        """The keys of the entries that hold ``ref``'s files (gathered shards: one per shard)."""
        objects, gather = f"{self.root / 'objects'}{os.sep}", f"{self.root / 'gather'}{os.sep}"
        keys: dict[str, None] = {}   # in order, each once (a list's `in` made it quadratic)
        for p in map(str, ref.paths):
            targets = [p]
            if p.startswith(gather):
                targets = [os.path.normpath(os.path.join(p, os.readlink(s)))
                           for s in sorted(Path(p).iterdir()) if s.is_symlink()]
            for t in targets:
                parts = t[len(objects):].split(os.sep) if t.startswith(objects) else []
                if len(parts) >= 2:
                    keys[parts[1]] = None
        return list(keys)

    def damage_message(self, step: str, input_name: str, ref: Ref, changed: str) -> str:
        """The one-line failure of a step whose input was damaged in the cache. When its entry
        is no longer in the cache (``check_intact`` moved it to ``quarantine/``, or another
        process had), a plain rerun computes the producer again: no ``--force`` is needed."""
        producer = ref.producer.split(".")[0]
        if any(not self.entry_path(key).exists() for key in self.keys_of(ref)):
            fix = (f"it is no longer in the cache (see quarantine/), so a rerun computes step "
                   f"'{producer}' again")
        else:
            fix = f"fix: rerun with --force {producer}"
        return (f"step '{step}' input '{input_name}' is damaged in the cache: {changed} changed "
                f"after it was committed by step '{producer}'; {fix}")

    def set_aside(self, key: str, entry: Entry | None, reason: str, step: str) -> None:
        """``quarantine`` for a command that found ``entry`` damaged (``rag verify``): under
        the key's lock, and only while ``_entry.json`` is still the file it read, so a
        ``--force`` committed meanwhile is not moved aside for the old entry's damage. The lock
        is waited for a few seconds: two shards that read the same damaged part both set it
        aside, and the second must see the first's move, not report the entry as left."""
        from filelock import Timeout

        try:
            lock = self.lock(key, f"key {key[:12]} (quarantine)").acquire(
                timeout=QUARANTINE_WAIT_S)
        except (Timeout, OSError):
            log.warning("cache entry %s of step '%s' is damaged (%s) but another process is "
                        "computing its key: left in place", key[:12], step, reason)
            return
        try:
            if entry is None or self.unchanged(entry):
                self.quarantine(key, self.entry_path(key), reason, step)
        finally:
            lock.release()

    def quarantine(self, key: str, path: Path, reason: str, step: str) -> None:
        """Move an unusable entry to ``quarantine/`` with a note of why, and warn in one line."""
        self.misses[key] = reason
        dest = self.root / "quarantine" / f"{key}.{time.strftime('%Y%m%d-%H%M%S')}.{os.urandom(2).hex()}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            note = {"key": key, "step": step, "reason": reason, "when": time.time(), "from": str(path)}
            (dest / QUARANTINE_NOTE).write_text(json.dumps(note, indent=1))
            where = f"moved to {dest.parent}/"
        except OSError as e:
            where = f"could not move it to quarantine ({e.strerror or e}); treated as missing"
        label = f"step '{step}'" if step else "a step"
        log.warning("cache entry %s of %s is not usable: %s; %s", key[:12], label, reason, where)

    # ------------------------------------------------------------ writing

    def lock(self, key: str, what: str = "") -> StoreLock:
        """Single flight for ``key``: FileLock semantics, plus holder info beside the lock."""
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        return StoreLock(self.root / "locks" / f"{key}.lock", what or f"key {key[:12]}")

    def lease(self, runs_dir: str | Path) -> Lease:
        """``with store.lease(runs_dir) as lease: ... lease.add_run(run.path)``: registers the
        runs directory in this cache and marks the run live (pid, host, heartbeat) for ``rag gc``."""
        return Lease(self.root, Path(runs_dir))

    def new_tmp(self, key: str) -> Path:
        path = self.root / "tmp" / tmp_name(key)
        path.mkdir(parents=True)
        return path

    def scratch(self, key: str) -> Path:
        return self.root / "scratch" / key

    def answers(self) -> Path:
        """Paid LLM answers, by endpoint and request, shared by every step (``ctx.answers``)."""
        return self.root / "answers"

    def commit(self, tmp: Path, key: str, meta: dict) -> Entry:
        """Record every file's size and mtime, make the files read-only, write ``_entry.json``
        last, then rename the temporary directory into place."""
        tmp_root = str(tmp)
        meta = {**meta, "outputs": {
            n: {**r, "paths": [os.path.relpath(p, tmp_root) for p in r["paths"]]}
            for n, r in meta["outputs"].items()}}
        if "stage" in meta and "code" not in meta:
            from orchestrator.hashing import registered_code

            meta["code"] = registered_code(meta["stage"])
        files = file_table(tmp)
        make_read_only(tmp, files)
        (tmp / ENTRY).write_text(json.dumps({**meta, "files": files}, indent=1))
        os.chmod(tmp / ENTRY, 0o444)
        final = self.entry_path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if final.exists():  # --force: swap the old entry out, then delete it
            old = final.with_name(f"{key}.old.{os.urandom(4).hex()}")
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.scratch(key), ignore_errors=True)
        return Entry(key, final, meta, files)

    def gather_dir(self, parts: list[Ref]) -> Path:
        """One directory whose ``shard-0000k`` entries link to the shards' directory outputs."""
        digest = hash_strings([r.content_hash for r in parts])
        final = self.root / "gather" / digest
        if digest in self._gathered:   # checked by this process already: a sweep's members
            return final               # gather the same shards, each link a realpath
        if final.is_dir() and all(_in_cache(final / f"shard-{i:05d}", self.root)
                                  for i in range(len(parts))):
            self._gathered.add(digest)
            return final    # a moved cache's absolute links point elsewhere: remade
        tmp = self.root / "tmp" / f"gather.{digest}.{os.urandom(4).hex()}"
        tmp.mkdir(parents=True)
        for i, ref in enumerate(parts):   # relative: the cache can be moved whole
            os.symlink(os.path.relpath(ref.paths[0], final), tmp / f"shard-{i:05d}")
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_dir():  # links to entries that were quarantined and recomputed: replace
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    # ------------------------------------------------------------ listing (gc, verify)

    def entries(self):
        base = self.root / "objects"
        if not base.is_dir():
            return
        for prefix in base.iterdir():
            for path in prefix.iterdir():   # not <key>.old.<rand>: a --force deleting it
                if "." not in path.name and (path / ENTRY).is_file():
                    yield path

    def replaced(self) -> list[Path]:
        """Entries a ``--force`` swapped out (``<key>.old.<rand>``) that were not deleted (the
        process was killed between the swap and the delete, or is deleting them now)."""
        base = self.root / "objects"
        if not base.is_dir():
            return []
        return [path for prefix in base.iterdir() for path in prefix.iterdir()
                if ".old." in path.name]

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
            pid = pid_of_here(path.name)
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue  # committed or removed meanwhile
            if parts[0] == "gather" and len(parts) > 2:
                pid = None  # gather.<digest>.<rand>: short-lived, no pid; removed when old
                if age < 3600:
                    continue
            elif pid is None and len(parts) > 2 and age < LEASE_GRACE_S:
                continue  # another host's (or PID namespace's) writer: it may still run
            is_alive = pid is not None and alive(pid)
            if not is_alive or age > older_than_s > 0:
                out.append(path)
        return out


def _in_cache(link: Path, root: Path) -> bool:
    """Whether ``link`` leads to something under ``root``: a gather directory's links point at
    entries holding the content its name hashes (another step's entries of the same content
    serve too); a copied cache's absolute links lead into the old one."""
    target = os.path.realpath(link)
    return target.startswith(str(root) + os.sep) and os.path.exists(target)


def check_dir(path: Path, what: str, hint: str, probe: bool = True) -> None:
    """Refuse (``ConfigError``: ``<what> <path> is not writable (why)``) a ``path`` that is not a
    directory and cannot be made one, or (``probe``) in which a small file cannot be written and
    removed. A full disk gets the hint to free space instead of ``hint`` (with ``rag gc`` only
    where the cache is on that disk)."""
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is not writable (it is a file, not a directory)",
                          hint=hint)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file" if blocker else e.strerror or str(e)
        raise ConfigError(f"{what} {path} is not writable (cannot create it: {why})",
                          hint=hint) from None
    if not probe:
        return
    try:
        fd, name = tempfile.mkstemp(prefix=".ragline-probe-", dir=path)
        try:
            os.write(fd, b"ragline")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):   # rag gc frees the cache's disk only
            from orchestrator.locate import cache_root

            cache = cache_root(path)   # (Store.for_runs)
            hint = FULL_DISK_HINT if what == "cache directory" or same_disk(str(path), str(cache)) \
                else OTHER_DISK_HINT
        raise ConfigError(f"{what} {path} is not writable ({e.strerror or e})",
                          hint=hint) from None


# ---------------------------------------------------------------- integrity of one entry


def entry_of(d: Path) -> tuple[Path, str] | None:
    """(cache root, key) of the cache entry that holds the artifact directory ``d`` (resolved),
    or None when ``d`` is not in a cache's ``objects/``.

    >>> entry_of(Path("/c/objects/ab/abcd/outputs/out")), entry_of(Path("/elsewhere/out"))
    ((PosixPath('/c'), 'abcd'), None)
    """
    parts = d.parts
    for i in range(len(parts) - 3, 0, -1):
        if parts[i] == "objects" and len(parts[i + 1]) == 2 and \
                parts[i + 2].startswith(parts[i + 1]):
            return Path(*parts[:i]), parts[i + 2]
    return None


def entry_stamp(path: Path) -> tuple | None:
    """(inode, size, mtime) of the ``_entry.json`` in entry folder ``path``; None: none."""
    try:
        st = os.stat(path / ENTRY)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def read_entry(path: Path, key: str) -> tuple[Entry | None, str | None]:
    """(entry, None) when ``_entry.json`` reads; (None, "") when absent; (None, why) when damaged."""
    file = path / ENTRY
    try:
        with open(file, "rb") as f:
            st = os.fstat(f.fileno())
            text = f.read().decode()
    except (FileNotFoundError, NotADirectoryError):
        return None, ""
    except (OSError, UnicodeDecodeError) as e:
        return None, f"damaged metadata: {file}: {e}"
    try:
        meta = json.loads(text)
        if not isinstance(meta, dict) or not isinstance(meta.get("outputs"), dict):
            raise ValueError("not a ragline entry (no 'outputs' mapping)")
    except ValueError as e:
        return None, f"damaged metadata: {file}: {str(e).splitlines()[0]}"
    files = meta.pop("files", None)
    entry = Entry(key, path, meta, files if isinstance(files, dict) else None)
    entry.stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    return entry, None


def file_table(root: Path) -> dict[str, list]:
    """``{relative path: [size, mtime_ns]}`` of every file under ``root`` (directories:
    ``[None, mtime_ns]``; ``root`` itself and ``_entry.json`` are left out)."""
    table: dict[str, list] = {}
    base = str(root)
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = os.path.relpath(dirpath, base)
        for name in dirnames:
            st = os.lstat(os.path.join(dirpath, name))
            table[os.path.normpath(os.path.join(rel_dir, name))] = [None, st.st_mtime_ns]
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel == ENTRY:
                continue
            st = os.lstat(os.path.join(dirpath, name))
            table[rel] = [st.st_size, st.st_mtime_ns]
    return table


def make_read_only(root: Path, table: dict[str, list]) -> None:
    """``chmod a-w`` on every regular file of the table (directories stay writable so the entry
    can be moved or removed; their mtime records any file added or removed)."""
    import stat

    for rel, (size, _) in table.items():
        if size is None:
            continue
        p = os.path.join(root, rel)
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode):
            os.chmod(p, stat.S_IMODE(st.st_mode) & ~0o222)


def changed_file(entry: Entry) -> str | None:
    """The first file (relative to the entry) whose size or mtime differs from the commit, or
    None. Entries written before the table existed: only the outputs' presence is checked."""
    base = str(entry.path)
    if entry.files is None:
        for r in entry.meta["outputs"].values():
            for p in r.get("paths", []):
                if not os.path.lexists(os.path.join(base, p)):
                    return p
        return None
    dirs = []
    for rel, (size, mtime) in entry.files.items():  # files first: they name what changed
        if size is None:
            dirs.append((rel, mtime))
            continue
        try:
            st = os.lstat(os.path.join(base, rel))
        except OSError:
            return f"{rel} (deleted)"
        if st.st_mtime_ns != mtime or st.st_size != size:
            return rel
    for rel, mtime in dirs:
        try:
            st = os.lstat(os.path.join(base, rel))
        except OSError:
            return f"{rel}/ (deleted)"
        if st.st_mtime_ns != mtime:
            return f"{rel}/ (a file was added or removed)"
    return None
