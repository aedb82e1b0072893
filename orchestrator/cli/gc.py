"""``rag gc``: remove cache entries that no recent run references."""

from __future__ import annotations

EXAMPLES = """examples:
  rag gc --dry-run             # what would be removed, and how much space
  rag gc --keep-runs 5         # keep what the 5 newest runs of each recipe use
  rag gc --keep-days 30"""


def add_arguments(p) -> None:
    p.add_argument("--dry-run", action="store_true", help="list, do not delete")
    p.add_argument("--keep-runs", type=int, default=10, help="runs per recipe to keep (default 10)")
    p.add_argument("--keep-days", type=float, default=None, help="also keep runs younger than this")
    p.add_argument("--runs-dir", default=None)


def _size(path) -> int:
    import os

    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def main(args) -> int:
    import json
    import shutil
    import time

    from orchestrator.cli.common import runs_dir
    from orchestrator.logs import console
    from orchestrator.store import Store

    runs = runs_dir(args)
    store = Store.for_runs(runs)
    statuses = sorted(runs.glob("*/*/status.json")) + sorted(runs.glob("*/*/member-*/status.json"))
    by_recipe: dict[str, list] = {}
    for s in statuses:
        by_recipe.setdefault(s.relative_to(runs).parts[0], []).append(s)
    keep_keys: set[str] = set()
    now = time.time()
    kept_runs = 0
    for recipe, files in by_recipe.items():
        files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for i, f in enumerate(files):
            young = args.keep_days is not None and now - f.stat().st_mtime < args.keep_days * 86400
            if i < args.keep_runs or young:
                kept_runs += 1
                status = json.loads(f.read_text())
                for step in status.get("steps", {}).values():
                    keep_keys.update(step.get("keys", []))
    doomed = [p for p in store.entries() if p.name not in keep_keys]
    doomed += store.stale_tmp()
    scratch = store.root / "scratch"
    if scratch.is_dir():
        doomed += [p for p in scratch.iterdir() if p.name not in keep_keys]
    gather = store.root / "gather"
    if gather.is_dir():
        doomed += [p for p in gather.iterdir()
                   if any(not l.exists() for l in p.iterdir()) or not any(p.iterdir())]
    total = sum(_size(p) for p in doomed)
    verb = "would remove" if args.dry_run else "removed"
    for p in doomed:
        if args.dry_run:
            console().print(f"  {p}", markup=False)
        else:
            shutil.rmtree(p, ignore_errors=True)
    console().print(f"{verb} {len(doomed)} entries ({total / 1e6:.1f} MB); kept what {kept_runs} "
                    f"run(s) reference ({len(keep_keys)} keys)")
    return 0
