"""``rag status``: the steps of a run with state, duration and cache hit/miss."""

from __future__ import annotations

EXAMPLES = """examples:
  rag status                        # the latest run
  rag status 20261121-101500        # a run by name (runs/<recipe>/<name>)
  rag status --json | jq .run       # the run directory, for scripts"""


def add_arguments(p) -> None:
    p.add_argument("run", nargs="?", help="run directory or name (default: the latest run)")
    p.add_argument("--runs-dir", default=None, help="default: ./runs")
    p.add_argument("--json", action="store_true", help="print status.json")


def main(args) -> int:
    import json
    import sys

    from orchestrator.cli.common import find_run, read_status, runs_dir
    from orchestrator.cli.summary import print_run_summary
    from orchestrator.logs import report
    from orchestrator.rundir import effective_state

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
    return 0
