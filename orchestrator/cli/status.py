"""``rag status``: the steps of a run with state, duration and cache hit/miss."""

from __future__ import annotations

EXAMPLES = """examples:
  rag status                        # the latest run
  rag status 20261121-101500        # a run by name (runs/<recipe>/<name>)
  rag status 20261121-101500-sweep  # a sweep: one row per member
  rag status --json | jq .run       # the run directory, for scripts"""


def add_arguments(p) -> None:
    p.add_argument("run", nargs="?", help="run directory or name (default: the latest run)")
    p.add_argument("--runs-dir", default=None, help="default: ./runs")
    p.add_argument("--json", action="store_true", help="print status.json")


def main(args) -> int:
    import json
    import sys

    from orchestrator.cli.common import find_run, find_sweep, read_status, runs_dir
    from orchestrator.cli.summary import print_run_summary
    from orchestrator.logs import escape, report
    from orchestrator.rundir import effective_state

    sweep = find_sweep(runs_dir(args), args.run)
    if sweep is not None:
        return _sweep_status(sweep, args.json)
    run = find_run(runs_dir(args), args.run)
    status = read_status(run)
    status["state"] = effective_state(status)  # a killed run reads interrupted, not running
    if status["state"] == "interrupted":
        for s in status["steps"].values():
            if s.get("state") == "running":
                s["state"] = "interrupted"
    if args.json:
        sys.stdout.write(json.dumps(status, indent=1) + "\n")
        return 0
    print_run_summary(status, brief=False)
    report().print(f"state: {status['state']}   command: {status['command']}")
    if status.get("error"):
        report().print(f"[red]error:[/] {status['error']}", soft_wrap=True)
    for name, s in status["steps"].items():
        if s.get("state") == "failed":
            report().print(f"[red]✗ {name}[/]: {s.get('error')}\n  log: {s.get('log')}")
    if run.parent.name.endswith("-sweep"):
        report().print(f"a member of sweep {escape(str(run.parent))}: rag status "
                       f"{escape(run.parent.name)} shows every member", soft_wrap=True)
    return 0


def _sweep_status(sweep, as_json: bool) -> int:
    """One row per member of a sweep: its overrides, state, and what its steps did."""
    import json
    import sys

    from rich.table import Table

    from orchestrator.cli.common import read_status
    from orchestrator.logs import escape, report
    from orchestrator.rundir import effective_state

    members = []
    for path in sorted(sweep.glob("member-*")):
        status = read_status(path)
        steps = status["steps"].values()
        members.append({"member": path.name, "run": str(path),
                        "overrides": status.get("overrides") or [],
                        "state": effective_state(status),
                        "ran": sum(s.get("state") == "done" and s.get("cache") == "miss"
                                   for s in steps),
                        "cached": sum(s.get("cache") == "hit" for s in steps),
                        "failed": sum(s.get("state") == "failed" for s in steps)})
    if as_json:
        sys.stdout.write(json.dumps({"sweep": str(sweep), "members": members}, indent=1) + "\n")
        return 0
    table = Table(title=escape(f"sweep {sweep}"))
    for col in ("member", "overrides", "state", "ran", "cached", "failed"):
        table.add_column(col, justify="right" if col in ("ran", "cached", "failed") else "left")
    for m in members:
        table.add_row(m["member"], escape(" ".join(m["overrides"])), m["state"], str(m["ran"]),
                      str(m["cached"]), str(m["failed"]))
    report().print(table)
    report().print(f"one member's steps: rag status {escape(str(sweep))}/member-0000",
                   soft_wrap=True)
    return 0
