"""``rag verify``: re-hash cached artifacts in full and compare with what was committed.

A cache hit already checks every file's size and mtime (cheap); verify reads every byte, so it
also finds a file rewritten with its size and mtime restored, or bit rot.
"""

from __future__ import annotations

EXAMPLES = """examples:
  rag verify                         # the entries the latest run used
  rag verify 20261121-101500         # the entries of one run
  rag verify --all                   # every entry in the cache
  rag verify --all --quarantine      # and move damaged ones aside (the next run recomputes them)

exit codes: 0 all intact, 1 something is damaged, 2 a usage error (such as no such run)."""


def add_arguments(p) -> None:
    p.add_argument("run", nargs="?", default=None,
                   help="run directory or name, or a sweep's member (default: the latest run)")
    p.add_argument("--all", action="store_true", help="every entry in the cache")
    p.add_argument("--quarantine", action="store_true",
                   help="move damaged entries, and the entries computed from them, to the "
                        "cache's quarantine/ folder")
    p.add_argument("--runs-dir", default=None, help="where rag run wrote its runs (default: ./runs)")


def entry_problem(store, entry) -> str | None:
    """Why a committed entry is not what was committed (stat, then content), or None. An
    entry whose timestamps alone changed (a copy, a touch) is re-hashed and kept."""
    from orchestrator.artifacts import rehash
    from orchestrator.store import changed_file

    changed = changed_file(entry)
    if changed is not None:
        changed = store.recheck(entry, changed)
        if changed is None:
            return None     # re-hashed in full by the recheck
        return f"artifact changed on disk after commit: {changed}"
    for name, ref in entry.meta["outputs"].items():
        dest = entry.path / "outputs" / name
        try:
            digest, per_file = rehash(dest, ref["kind"])
        except OSError as e:
            return f"outputs/{name}: cannot be read ({e.strerror or e})"
        if digest == ref.get("content_hash"):
            continue
        recorded = _recorded_hashes(dest)
        bad = [f for f, h in per_file.items() if recorded.get(f) != h]
        bad += [f for f in recorded if f not in per_file]
        where = f"outputs/{name}/{bad[0]}" if bad else f"outputs/{name}"
        return f"content differs from its commit: {where}"
    return None


def checked(store, key: str) -> tuple:
    """(entry, why it is damaged or None) of ``key``; (None, "") when it has none. An entry
    committed again while it was read (a ``--force`` elsewhere) is checked again as it is now,
    not reported damaged for the new bytes under the old metadata."""
    from orchestrator.store import read_entry

    for _ in range(3):
        entry, problem = read_entry(store.entry_path(key), key)
        if entry is None:
            return entry, problem
        problem = entry_problem(store, entry)
        if problem is None or store.unchanged(entry):
            break
    return entry, problem


def _manifest_step(store, key: str) -> str:
    """The step that committed ``key``, read from its outputs' manifests when its
    ``_entry.json`` (which names it) cannot be read; "?" when no manifest says."""
    import json

    for manifest in sorted(store.entry_path(key).glob("outputs/*/_manifest.json")):
        try:
            producer = json.loads(manifest.read_text()).get("producer")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(producer, str) and producer.split(".")[0]:
            return producer.split(".")[0]
    return "?"


def _recorded_hashes(dest) -> dict:
    import json

    try:
        data = json.loads((dest / "_manifest.json").read_text())
        return data.get("hashes") or {}
    except (OSError, ValueError, AttributeError):
        return {}


def target_keys(store, args) -> tuple[list[str], str, set[str]]:
    """(keys to verify, what they are, the keys a run computed or reused) for --all or a run."""
    from orchestrator.cli.common import find_run, runs_dir
    from orchestrator.cli.gc import run_keys, used_keys
    from orchestrator.errors import ConfigError

    if args.all and args.run:
        raise ConfigError(f"name a run ({args.run}) or --all, not both",
                          hint="rag verify RUN checks the entries that run used; rag verify --all "
                               "every entry in the cache")
    if args.all:
        return sorted(p.name for p in store.entries()), f"cache {store.root}", set()
    run = find_run(runs_dir(args), args.run)
    return sorted(run_keys(run, scratch=False) or set()), f"run {run}", used_keys(run)


def absent_words(removed: int, never: int, quarantined: int = 0, with_it: int = 0) -> str:
    """What the summary line says of a run's keys that have no cache entry (``with_it``: of
    the ``quarantined``, those moved as computed from a damaged entry, not found damaged).

    >>> absent_words(0, 0)
    ''
    >>> absent_words(0, 3)
    ', 3 never computed (the run stopped before them)'
    >>> absent_words(2, 0, 1)
    ', 1 in quarantine (found damaged; the next run recomputes it), 2 no longer in the cache \
(removed by rag gc, or the cache moved)'
    >>> absent_words(0, 0, 3, 2)
    ', 3 in quarantine (1 found damaged, 2 computed from it; the next run recomputes them)'
    """
    found = quarantined - with_it
    why = f"{found} found damaged, {with_it} computed from it" if with_it else "found damaged"
    return ((f", {quarantined} in quarantine ({why}; the next run recomputes "
             f"{'it' if quarantined == 1 else 'them'})" if quarantined else "")
            + (f", {removed} no longer in the cache (removed by rag gc, or the cache moved)"
               if removed else "")
            + (f", {never} never computed (the run stopped before them)" if never else ""))


def in_quarantine(store) -> int:
    """How many entries ``quarantine/`` holds."""
    qdir = store.root / "quarantine"
    return sum(1 for p in qdir.iterdir() if p.is_dir()) if qdir.is_dir() else 0


def quarantine_words(store, n: int) -> str:
    """After ``--all``: the ``n`` entries moved aside as damaged before this command that are
    still in ``quarantine/``."""
    qdir = store.root / "quarantine"
    if not n:
        return ""
    return (f"; {n} more in {qdir} (moved aside as damaged, never used again; rag gc removes "
            f"{'it' if n == 1 else 'them'})")


def dependents(metas: dict[str, dict], hashes: set[str]) -> list[tuple[str, str]]:
    """(key, step) of every entry computed, directly or not, from an output whose content hash
    is in ``hashes`` (its task material's inputs name it), nearest first, then by step and key.

    >>> metas = {"k2": {"step": "mul", "material": {"inputs": {"numbers": "h1"}},
    ...                 "outputs": {"out": {"content_hash": "h2"}}},
    ...          "k3": {"step": "total", "material": {"inputs": {"numbers": "h2"}},
    ...                 "outputs": {"out": {"content_hash": "h3"}}},
    ...          "k4": {"step": "other", "material": {"inputs": {"numbers": "h9"}}}}
    >>> dependents(metas, {"h1"})
    [('k2', 'mul'), ('k3', 'total')]

    A step that reads a sharded step names the shards' hash together (:func:`gathered`)::

    >>> from orchestrator.hashing import hash_strings
    >>> shards = {f"s{i}": {"step": "mul", "material": {"inputs": {"numbers": "h1"},
    ...                                               "shard": [i, 2]},
    ...                     "outputs": {"out": {"content_hash": f"m{i}"}}} for i in (0, 1)}
    >>> total = {"step": "total", "material": {"inputs": {"numbers": hash_strings(["m0", "m1"])}}}
    >>> dependents({**shards, "k3": total}, {"m1"})
    [('k3', 'total')]
    """
    found: dict[str, tuple[int, str]] = {}   # key -> (steps away from the damage, step)
    hashes, together, depth = set(hashes), gathered(metas), 0
    while True:
        depth, grown = depth + 1, set()
        for key, meta in metas.items():
            inputs = {h for h in ((meta.get("material") or {}).get("inputs") or {}).values()
                      if isinstance(h, str)}
            inputs |= {part for h in inputs for part in together.get(h, ())}
            if key not in found and hashes & inputs:
                found[key] = (depth, str(meta.get("step", "?")))
                grown |= {o.get("content_hash", "") for o in (meta.get("outputs") or {}).values()}
        if not grown - hashes:
            break
        hashes |= grown
    return [(k, step) for k, (_, step) in sorted(found.items(), key=lambda x: (x[1], x[0]))]


def gathered(metas: dict[str, dict]) -> dict[str, set[str]]:
    """``{hash of a sharded step's output as its readers name it: its shards' hashes}``, for
    every step whose shards are all in ``metas`` (``resolve.gather`` hashes them in order)."""
    from orchestrator.hashing import hash_strings
    from orchestrator.keys import scratch_key

    groups: dict[tuple, dict[int, dict]] = {}
    for meta in metas.values():
        material = meta.get("material") or {}
        shard = material.get("shard")
        if isinstance(shard, list) and len(shard) == 2 and shard[1] > 1:
            groups.setdefault((scratch_key(material), shard[1]), {})[shard[0]] = \
                meta.get("outputs") or {}
    out: dict[str, set[str]] = {}
    for (_, n), shards in groups.items():
        if sorted(shards) != list(range(n)):
            continue
        for name in shards[0]:
            parts = [str((shards[i].get(name) or {}).get("content_hash", "")) for i in range(n)]
            out[hash_strings(parts)] = set(parts)
    return out


def _dependents(store, hashes: set[str], damaged_steps: list[str],
                damaged_metas: dict[str, dict], quarantine: bool) -> str:
    """The line naming the entries computed from damaged outputs ("" when none); with
    ``quarantine`` they are moved aside too: their results may hold the damage, and once the
    damaged entry is recomputed to its old content they would be hits again (the damaged
    entries' own metadata is given, since ``--quarantine`` has moved them)."""
    from orchestrator.store import read_entry

    metas, entries = dict(damaged_metas), {}
    for path in store.entries():
        entry, _ = read_entry(path, path.name)
        if entry is not None:
            metas[path.name], entries[path.name] = entry.meta, entry
    found = [(k, step) for k, step in dependents(metas, hashes) if k not in damaged_metas]
    if not found:
        return ""
    steps = list(dict.fromkeys(step for _, step in found))
    origin = ", ".join(dict.fromkeys(damaged_steps))
    were = "entry was" if len(found) == 1 else "entries were"
    head = f"  {len(found)} {were} computed from the damaged outputs (steps {', '.join(steps)})"
    if quarantine:
        for key, step in found:
            store.set_aside(key, entries.get(key), f"{COMPUTED_FROM} '{origin}'", step)
        return f"{head}: their results may hold the damage, so they were quarantined too"
    again = " ".join(f"--from {s}" for s in dict.fromkeys(damaged_steps))
    return (f"{head}: if the damage came first, their results are wrong too; recompute them: "
            f"rag run RECIPE {again}, or rerun with --quarantine")


COMPUTED_FROM = "computed from the damaged output of step"   # a dependent's quarantine reason


def _absent(store, gone: list[str], used: set[str]) -> str:
    """The summary's words for a run's keys that have no entry: quarantined, removed, never."""
    reasons = {k: store.miss_reason(k) for k in gone}
    quarantined = {k for k, why in reasons.items() if why is not None}
    removed = sum(k in used and k not in quarantined for k in gone)
    never = sum(k not in used and k not in quarantined for k in gone)
    with_it = sum(reasons[k].startswith(COMPUTED_FROM) for k in quarantined)
    return absent_words(removed, never, len(quarantined), with_it)


def main(args) -> int:
    from orchestrator.cli.common import runs_dir
    from orchestrator.logs import report
    from orchestrator.store import Store

    store = Store.for_runs(runs_dir(args))
    keys, what, used = target_keys(store, args)
    c = report()
    ok = 0
    gone: list[str] = []
    damaged: list[tuple[str, str, str]] = []
    hashes: set[str] = set()    # the damaged entries' output content hashes
    metas: dict[str, dict] = {}   # and their metadata
    held = in_quarantine(store) if args.all else 0    # before this command adds to it
    for key in keys:
        entry, problem = checked(store, key)
        if entry is None and problem == "":
            gone.append(key)
            continue
        step = entry.meta.get("step", "?") if entry is not None else _manifest_step(store, key)
        if problem is None:
            ok += 1
            continue
        damaged.append((key, step, problem))
        if entry is not None:
            hashes |= {o.get("content_hash", "") for o in entry.meta["outputs"].values()}
            metas[key] = entry.meta
        c.print(f"[red]DAMAGED[/] step '{step}' ({key[:12]}): {problem}", soft_wrap=True)
        if args.quarantine:
            store.set_aside(key, entry, problem, step)
    c.print(f"verified {ok + len(damaged)} entries of {what}: {ok} intact, {len(damaged)} damaged"
            + (quarantine_words(store, held) if args.all else _absent(store, gone, used)),
            soft_wrap=True)
    if damaged and not args.quarantine:
        c.print("  rerun with --quarantine to move them aside; the next run recomputes them")
    elif damaged:
        c.print(f"  quarantined {len(damaged)}; the next run recomputes them")
    note = _dependents(store, hashes, [step for _, step, _ in damaged], metas,
                       args.quarantine) if damaged else ""
    if note:   # a stat check cannot see bit rot: steps after it may have read the damage
        c.print(note, soft_wrap=True)
    return 1 if damaged else 0
