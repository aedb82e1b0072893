"""``rag gc``: remove cache entries that no kept run and no live run uses, and the leftovers of
killed runs (temporary directories, task files, lock files, dead leases, quarantined entries).

A cache may be shared by several runs directories (``RAGLINE_CACHE``): every run registers its
runs directory in the cache, so gc keeps the newest runs of *every* registered runs directory,
not only ``--runs-dir``. A live run (its lease: pid, host, heartbeat) keeps everything in its
plan and record whatever ``--keep-runs`` says, and so does every entry written since it started.
A kept run keeps its whole plan, so the upstream of an ``--only`` run stays too.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

EXAMPLES = """examples:
  rag gc --dry-run             # what would be removed, and how much space
  rag gc --keep-runs 5         # keep what the 5 newest runs (a sweep: one) of each recipe use
  rag gc --keep-days 30        # also keep what runs of the last 30 days use
  rag gc --keep-answers-days 90   # keep paid LLM answers used in the last 90 days
  RAGLINE_CACHE=/shared/cache rag gc --runs-dir runsA   # a shared cache: runs dirs of all users count"""

log = logging.getLogger("ragline")
STALE_LOCK_S = 60  # a lock file untouched this long, and free, is removed
# empty bookkeeping files: --dry-run counts them in its summary, its list leaves them out (a
# cache used for a while has hundreds of lock files, which drowned the entries it would remove)
HOUSEKEEPING = ("lock files", "task files", "dead leases")


def add_arguments(p) -> None:
    p.add_argument("--dry-run", action="store_true",
                   help="list on stdout what would be removed, do not delete (lock, task and "
                        "lease files are only counted)")
    from orchestrator.cli.common import whole_number

    p.add_argument("--keep-runs", type=whole_number(0), default=10,
                   help="runs per recipe to keep (default 10; a sweep counts as one run; a "
                        "run refused before its first step does not count)")
    p.add_argument("--keep-days", type=days, default=None, metavar="DAYS",
                   help="also keep runs younger than this many days (0 or more)")
    p.add_argument("--keep-answers-days", type=days, default=30, metavar="DAYS",
                   help="paid LLM answers (answers/) unused this many days are removed "
                        "(default 30; a cached answer is used whenever a step asks it again)")
    p.add_argument("--runs-dir", default=None, help="where rag run wrote its runs (default: ./runs)")


def days(text: str) -> float:
    """An argparse ``type``: a number of days, 0 or more (not nan, not inf).

    >>> days("30"), days("0.5")
    (30.0, 0.5)
    """
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of days, 0 or more, got {text!r}")
    return value


def run_keys(run: Path, provisional: bool = False, scratch: bool = True) -> set[str] | None:
    """Every key a run's record and plan name (None when neither can be read): with
    ``provisional``, also the keys a plan names for the steps after a step that runs (a live run
    reuses their entries when that step gives the same content again); without ``scratch``, not
    the sharded steps' request caches (which are no entries)."""
    keys: set[str] = set()
    found = False
    for name in ("status.json", "plan.json"):
        path = run / name
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            other = "plan.json" if name == "status.json" else "status.json"
            log.warning("%s is damaged (%s); the run's keys are read from its %s only", path,
                        str(e).splitlines()[0], other)
            continue
        steps = data.get("steps") if isinstance(data, dict) else None
        items = steps.values() if isinstance(steps, dict) else steps if isinstance(steps, list) else []
        for step in items:
            if not isinstance(step, dict) or (step.get("final") is False and not provisional):
                continue  # a plan's provisional keys (after an upstream step runs) name nothing
            if isinstance(step.get("keys"), list):
                keys.update(k for k in step["keys"] if isinstance(k, str))
            if scratch and isinstance(step.get("scratch"), str):   # a sharded step's requests
                keys.add(step["scratch"])
        found = True
    return keys if found else None


def used_keys(run: Path) -> set[str]:
    """The keys of the steps a run computed or reused (``status.json``: done or cached)."""
    try:
        steps = json.loads((run / "status.json").read_text()).get("steps") or {}
        return {k for s in steps.values() if s.get("state") in ("done", "cached")
                for k in s.get("keys") or []}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def kept_runs(runs: Path, keep_runs: int, keep_days: float | None) -> list[Path]:
    """The newest ``keep_runs`` run records of each recipe under ``runs`` that computed or reused
    a step (plus the young ones, and the runs in between). A sweep is one run: its members are
    kept or let go together (a 50-member sweep let go of the outputs of its 40 oldest members,
    every model it trained but ten). A run refused before its first step counts for none, so
    ten refused attempts in a row do not push out the run that computed something."""
    records = [p.parent for p in runs.glob("*/*/status.json")]
    records += [p.parent for p in runs.glob("*/*/member-*/status.json")]
    records += [p.parent for p in runs.glob("*/*/plan.json") if not (p.parent / "status.json").exists()]
    groups: dict[Path, list[tuple[float, Path]]] = {}   # a run, or a sweep: its records
    for run in records:
        try:
            mtime = max(os.stat(run / n).st_mtime for n in ("status.json", "plan.json")
                        if (run / n).exists())
        except (OSError, ValueError):
            continue
        groups.setdefault(run.parent if run.name.startswith("member-") else run,
                          []).append((mtime, run))
    by_recipe: dict[str, list[tuple[float, list[Path]]]] = {}
    for group, items in groups.items():
        by_recipe.setdefault(group.relative_to(runs).parts[0], []).append(
            (max(m for m, _ in items), [r for _, r in items]))
    now, out = time.time(), []
    for items in by_recipe.values():
        items.sort(key=lambda t: t[0], reverse=True)
        counted = 0
        for mtime, members in items:
            if counted < keep_runs or (keep_days is not None and now - mtime < keep_days * 86400):
                out.extend(members)
            counted += any(used_keys(run) for run in members)
    return out


def collect(store, runs: Path, args) -> tuple[set[str], list[str], float | None]:
    """(keys to keep, lines saying why, start of the oldest live run or None)."""
    from orchestrator.leases import (
        HOST,
        LEASE_GRACE_S,
        live_leases,
        register_runs_dir,
        registered_runs_dirs,
    )

    # a dry run writes nothing, not even this runs dir's registration; nor does gc where there
    # is no runs directory (a mistyped --runs-dir is not created, with a cache in it)
    if not args.dry_run and runs.is_dir():
        register_runs_dir(store.root, runs)
    registered = registered_runs_dirs(store.root)
    if all(d.resolve() != runs.resolve() for d, _ in registered):
        registered.append((runs, HOST))
    keep: set[str] = set()
    n_runs, dirs = 0, []
    for runs_dir, host in registered:
        if not runs_dir.is_dir():
            if host != HOST:
                log.warning("runs dir %s (used by host %s) is not visible here: its runs do not "
                            "protect their entries; run gc on %s too, or remove %s/runs-dirs/ "
                            "entries of runs dirs that are gone", runs_dir, host, host, store.root)
            continue
        dirs.append(runs_dir)
        for run in kept_runs(runs_dir, args.keep_runs, args.keep_days):
            keys = run_keys(run)
            if keys is not None:
                keep |= keys
                n_runs += 1
    live = [lease for lease in live_leases(store.root) if lease["live"]]
    planning = []
    for lease in live:
        for run in lease.get("runs") or []:
            keep |= run_keys(Path(run), provisional=True) or set()
            if not (Path(run) / "plan.json").is_file():
                planning.append(lease)
    oldest = min((float(lease.get("started") or 0) for lease in live), default=None)
    why = [f"kept what {n_runs} run(s) in {len(dirs)} runs dir(s) reference ({len(keep)} keys)"]
    if live:
        why.append(f"{len(live)} live run(s) (pid {', '.join(str(x.get('pid')) for x in live)}): "
                   "their plans and everything written since they started are kept")
    for lease in (x for x in live if x.get("silent_s")):
        why.append(f"run pid {lease.get('pid')} on host {lease.get('host')} has been silent for "
                   f"{lease['silent_s']:.0f} s (suspended?): what it uses is kept until it has "
                   f"been silent for {LEASE_GRACE_S // 60} min")
    if planning:   # its lookups (re-hashes of copied entries among them) have not named its keys
        why.append(f"a live run (pid {planning[0].get('pid')}) is still planning, so every entry "
                   "is kept: run gc again once it has started its steps")
        oldest = 0.0
    return keep, why, oldest


def doomed(store, keep: set[str], oldest_live: float | None,
           answers_days: float = 30) -> dict[str, list[Path]]:
    """What gc removes, by kind."""
    from orchestrator.leases import alive, live_leases

    root = store.root
    out: dict[str, list[Path]] = {"entries": [], "temporary directories": [], "task files": [],
                                  "quarantined entries": [], "lock files": [], "dead leases": [],
                                  "broken gather directories": [], "scratch directories": [],
                                  "replaced entries": store.replaced()}
    for p in store.entries():
        if p.name in keep:
            continue
        try:
            if oldest_live is not None and os.stat(p).st_mtime >= oldest_live - 0.05:
                continue  # written while a live run was going: it may still need it
        except FileNotFoundError:
            continue  # moved meanwhile (a quarantine, a --force swap)
        out["entries"].append(p)
    out["temporary directories"] = store.stale_tmp()
    for f in (root / "tmp" / "tasks").glob("*") if (root / "tmp" / "tasks").is_dir() else []:
        pid = f.name.split(".")[1] if f.name.count(".") >= 2 else ""
        if not (pid.isdigit() and alive(int(pid))):
            out["task files"].append(f)
    for sub, kind in (("quarantine", "quarantined entries"), ("scratch", "scratch directories")):
        if (root / sub).is_dir():
            out[kind] = [p for p in (root / sub).iterdir()
                         if sub == "quarantine" or (p.name not in keep and oldest_live is None)]
    if (root / "gather").is_dir():
        out["broken gather directories"] = [
            p for p in (root / "gather").iterdir() if _broken_gather(p)]
    out["lock files"] = stale_locks(root / "locks")
    out["unused answers"] = unused_answers(store.answers(), answers_days)
    out["dead leases"] = [Path(x["file"]) for x in live_leases(root) if not x["live"]]
    return out


def unused_answers(folder: Path, days_: float) -> list[Path]:
    """The answer files under ``folder`` (``answers/<endpoint>/<ab>/<request>.json``) neither
    written nor read for ``days_`` days: the endpoint client touches an answer it serves."""
    cutoff, day_ago = time.time() - days_ * 86400, time.time() - 86400
    out = []
    for f in folder.glob("*/*/*") if folder.is_dir() else ():
        try:   # a .tmp a killed writer left, a day old, is no answer
            mtime = f.stat().st_mtime
        except FileNotFoundError:
            continue
        if (f.suffix == ".json" and mtime < cutoff) or (f.suffix == ".tmp" and mtime < day_ago):
            out.append(f)
    return sorted(out)


def _broken_gather(path: Path) -> bool:
    """A gather directory that is empty or has a link to nothing (not one remade meanwhile)."""
    try:
        links = list(path.iterdir())
    except FileNotFoundError:
        return False
    return not links or any(not link.exists() for link in links)


def stale_locks(locks: Path) -> list[Path]:
    """Lock files nobody holds, untouched for a minute.

    Whether one is held is asked by taking it, as filelock takes it (``flock``) but without
    truncating the file, so ``gc --dry-run`` changes nothing and the ``gc`` after it still sees
    the lock as stale (some filelock versions truncate it); and without filelock's own
    bookkeeping, which was two thirds of gc's time on a cache of 8,000 entries (a lock file
    each).
    """
    import fcntl

    out = []
    now = time.time()
    with os.scandir(locks) if locks.is_dir() else nullcontext(()) as found:
        names = sorted(e.name for e in found if e.name.endswith(".lock"))
    for name in names:
        f = locks / name
        try:
            if now - f.stat().st_mtime < STALE_LOCK_S:
                continue
            fd = os.open(f, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:   # held
            continue
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            out.append(f)
        finally:
            os.close(fd)
    return out


def remove(path: Path) -> str | None:
    """Remove a file or directory tree; None, or why it could not be removed."""
    import shutil

    errors: list[str] = []
    if path.suffix == ".lock" and path.parent.name == "locks":
        from filelock import FileLock, Timeout

        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=0)
        except (Timeout, OSError) as e:
            return f"held again ({e})"
        try:
            path.unlink()
            path.with_name(path.name + ".holder").unlink(missing_ok=True)
        except OSError as e:
            return e.strerror or str(e)
        finally:
            lock.release()
        return None
    if path.is_dir() and not path.is_symlink() and path.parent.parent.name == "objects":
        # an entry is moved aside in one step first: a gc killed while deleting leaves no half
        # entry behind (a folder without _entry.json that nothing lists), and a second gc at the
        # same time finds it gone, not an error
        aside = path.parents[2] / "tmp" / f"{path.name}.{os.getpid()}.gc"
        try:
            aside.parent.mkdir(exist_ok=True)
            os.rename(path, aside)
        except FileNotFoundError:
            return None
        except OSError as e:
            return e.strerror or str(e)
        path = aside
    if path.is_dir() and not path.is_symlink():
        def failed(fn, p, e) -> None:
            if not isinstance(e[1], FileNotFoundError):   # gone already: another gc's work
                errors.append(f"{p}: {e[1].strerror or e[1]}")
        shutil.rmtree(path, onerror=failed)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append(f"{path}: {e.strerror or e}")
    return errors[0] if errors or path.exists() or path.is_symlink() else None


def _unreadable_records(store, plan: dict[str, list[Path]], runs: Path) -> list[Path]:
    """Damaged runs-dir registrations and lease files: while one hides what it protects, no
    entry or scratch directory is removed (``plan`` changed in place); a dead run's damaged
    lease joins the dead leases. Returns the files that hide something."""
    from orchestrator.leases import unreadable

    hiding, stale = unreadable(store.root, runs)
    plan["dead leases"] += stale
    if hiding:
        plan["entries"], plan["scratch directories"] = [], []
    return hiding


def _size(path: Path | str) -> int:
    """Bytes of the files under ``path`` (links not followed)."""
    total = 0
    try:
        with os.scandir(path) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    total += _size(e.path)
                else:
                    total += e.stat(follow_symlinks=False).st_size
    except OSError:
        pass
    return total


def _forget_gone_sources(store, dry_run: bool) -> int:
    """Drop the remembered hashes of source files that no longer exist (``sources.json`` grows
    with every file of every directory source ever read, and every run and shard loads it).
    In a cache that runs dirs of other hosts use, a file whose folder this host lacks is kept."""
    from orchestrator.hashing import SourceMemo
    from orchestrator.leases import HOST, registered_runs_dirs

    shared = any(host != HOST for _, host in registered_runs_dirs(store.root))
    memo = SourceMemo(store.root / "sources.json")
    gone = memo.prune(here_only=shared)
    if gone and not dry_run:
        try:
            memo.save()
        except OSError as e:
            log.warning("could not rewrite %s (%s); it keeps %d rows of files that are gone",
                        memo.path, e.strerror or e, gone)
            return 0
    return gone


def main(args) -> int:
    from orchestrator.cli.common import runs_dir
    from orchestrator.logs import console, escape
    from orchestrator.store import Store

    runs = runs_dir(args)
    store = Store.for_runs(runs)
    keep, why, oldest_live = collect(store, runs, args)
    plan = doomed(store, keep, oldest_live, args.keep_answers_days)
    hiding = _unreadable_records(store, plan, runs)
    removed: dict[str, int] = {}
    failed: list[str] = []
    size = 0
    if args.dry_run:  # the list on stdout (one path a line, for scripts), the summary on stderr
        sys.stdout.write("".join(f"{p}\n" for kind, paths in plan.items() for p in paths
                                 if kind not in HOUSEKEEPING))
    for kind, paths in plan.items():
        for p in paths:
            bytes_ = _size(p) if kind == "entries" else 0
            error = None if args.dry_run else remove(p)
            if error is None:
                removed[kind] = removed.get(kind, 0) + 1
                size += bytes_
            else:
                failed.append(f"{p}: {error}")
    forgotten = _forget_gone_sources(store, args.dry_run)
    if forgotten:
        removed["source memo rows"] = forgotten
    c = console()   # stderr: --dry-run's stdout is the list of paths alone, for scripts
    verb = "would remove" if args.dry_run else "removed"
    n = removed.get("entries", 0)
    others = ", ".join(f"{v} {k}" for k, v in removed.items() if k != "entries" and v)
    c.print(f"{verb} {n} entries ({size / 1e6:.1f} MB)" + (f", {others}" if others else ""),
            soft_wrap=True)
    for line in why:
        c.print(f"  {line}", soft_wrap=True)
    if not runs.is_dir():
        c.print(f"[yellow]note:[/] no runs directory {escape(str(runs))}/ (looked from "
                f"{escape(str(Path.cwd()))}), so no run of it keeps an entry; if rag run wrote "
                "its runs elsewhere, pass that --runs-dir", soft_wrap=True)
    if hiding:
        c.print(f"[yellow]warning:[/] {escape(str(hiding[0]))} cannot be read"
                + (f" (and {len(hiding) - 1} more)" if len(hiding) > 1 else "")
                + ": it registers a runs directory or a live run whose entries are unknown, so "
                f"no entry {'would be' if args.dry_run else 'was'} removed; a rag run from that "
                "runs directory writes it again, or delete it if no such run matters",
                soft_wrap=True)
    if failed:
        c.print(f"[red]could not remove {len(failed)}[/] (read-only cache?): {failed[0]}"
                + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""), soft_wrap=True)
        return 1
    return 0
