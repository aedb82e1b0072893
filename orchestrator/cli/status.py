"""``rag status``: the steps of a run with state, duration and cache hit/miss."""

from __future__ import annotations

EXAMPLES = """examples:
  rag status                        # the latest run
  rag status 20261121-101500        # a run by name (runs/<recipe>/<name>)
  rag status 20261121-101500-sweep  # a sweep: one row per member
  rag status --json | jq .run       # the run directory, for scripts"""


def add_arguments(p) -> None:
    p.add_argument("run", nargs="?", help="run directory or name (default: the latest run)")
    p.add_argument("--run", dest="run_option", default=None, metavar="RUN",
                   help="the same, as rag show and rag verify spell it")
    p.add_argument("--runs-dir", default=None, help="where rag run wrote its runs (default: ./runs)")
    p.add_argument("--json", action="store_true",
                   help="machine-readable: the run's status.json (a sweep: its members)")


def main(args) -> int:
    import json
    import os
    import sys

    from orchestrator.cli.common import (find_run, find_sweep, from_here, rag_command,
                                         read_status, runs_dir)
    from orchestrator.cli.summary import print_run_summary
    from orchestrator.logs import escape, report
    from orchestrator.rundir import effective_state

    args.run = args.run or getattr(args, "run_option", None)
    sweep = find_sweep(runs_dir(args), args.run)
    if sweep is not None:
        return _sweep_status(sweep, args.json)
    run = find_run(runs_dir(args), args.run)
    if args.run is None and run.parent.name.endswith("-sweep"):   # the latest run was a sweep:
        return _sweep_status(run.parent, args.json)        # its state, not its last member's
    status = read_status(run)
    status["run"] = str(run)   # where it is read from (a runs dir moved whole keeps its records)
    status["state"] = effective_state(status)  # a killed run reads interrupted, not running
    if status["state"] == "interrupted":
        for s in status["steps"].values():
            if s.get("state") == "running":
                s["state"] = "interrupted"
    _not_reached(status)
    runs = runs_dir(args) if args.runs_dir else _runs_of(run)
    _count_committed_shards(status, runs)
    _last_seconds(status, runs)
    if args.json:
        sys.stdout.write(json.dumps(status, indent=1) + "\n")
        return 0
    print_run_summary(status, brief=False)
    # escaped: a command or an error may hold brackets (ragline.imports=[a.b]) that rich would
    # read as markup and drop. From another folder: with a cd to the one the run started in
    command = from_here(str(status["command"]), status.get("cwd"), os.getcwd())
    report().print(f"state: {escape(status['state'])}   command: {escape(command)}",
                   soft_wrap=True)
    if status.get("resume") and status["state"] in ("interrupted", "failed"):
        resume = from_here(str(status["resume"]), status.get("cwd"), os.getcwd())
        report().print(f"resume with: {escape(resume)} (the command less what it "
                       "forced and finished)", soft_wrap=True)
    elif status["state"] == "interrupted":
        report().print("rerun that command to resume: finished steps are reused", soft_wrap=True)
    if status.get("error"):
        report().print(f"[red]error:[/] {escape(str(status['error']))}", soft_wrap=True)
    for name, s in status["steps"].items():
        if s.get("state") == "failed":
            log = f"\n  log: {escape(str(s['log']))}" if s.get("log") else ""
            report().print(f"[red]✗ {escape(name)}[/]: {escape(str(s.get('error')))}{log}",
                           soft_wrap=True)
    if run.parent.name.endswith("-sweep"):
        again = rag_command(f"rag status {run.parent.name}", runs_dir(args))
        report().print(f"a member of sweep {escape(str(run.parent))}: {escape(again)} shows "
                       "every member", soft_wrap=True)
    return 0


def _not_reached(status: dict) -> None:
    """Add, in the run's order, the planned steps a running or interrupted run has not reached
    yet: ``pending`` while it runs, ``not started`` once it stopped. A failed run lists its
    steps not run as ``skipped`` already.

    >>> s = {"state": "running", "planned_steps": {"a": "gen", "b": "map"},
    ...      "steps": {"a": {"stage": "gen", "state": "running"}}}
    >>> _not_reached(s); s["steps"]["b"]
    {'stage': 'map', 'state': 'pending'}
    """
    if status.get("state") not in ("running", "interrupted"):
        return
    planned = status.get("planned_steps") or {}
    state = "pending" if status["state"] == "running" else "not started"
    steps = status["steps"]
    status["steps"] = {name: steps.get(name) or {"stage": stage, "state": state}
                       for name, stage in planned.items()}
    status["steps"].update((n, s) for n, s in steps.items() if n not in planned)


def _runs_of(run) -> str:
    """The runs directory a run directory was written under (``runs/<recipe>/<name>``, or
    ``runs/<recipe>/<name>-sweep/member-NNNN``): the nearest one holding the cache."""
    for parent in list(run.resolve().parents)[1:3]:
        if (parent / "cache").is_dir():
            return str(parent)
    return str(run.resolve().parents[1])


def _count_committed_shards(status: dict, runs) -> None:
    """Set ``shards_done`` on each sharded step still running, interrupted or failed: how many
    of its shards are committed to the cache so far. A resume reuses those. Of a forced step
    (``kept`` recorded), only the entries committed since it started and those it kept count:
    the older ones are being replaced. Only the entry's marker file is looked at: nothing is
    hashed, and a status read changes nothing in the cache."""
    from orchestrator.store import ENTRY, Store

    store = None
    for s in status["steps"].values():
        keys = s.get("keys") or []
        if s.get("state") in ("running", "interrupted", "failed") and len(keys) > 1:
            store = store or Store.for_runs(runs)
            since = s.get("started") if "kept" in s else None
            s["shards_done"] = sum(_committed(store.entry_path(k) / ENTRY, since)
                                   or k in s.get("kept", ()) for k in keys)


def _committed(marker, since: float | None) -> bool:
    """Whether an entry's marker file exists (and, with ``since``, was written after it)."""
    try:
        written = marker.stat().st_mtime
    except OSError:
        return False
    return since is None or written >= since


def _last_seconds(status: dict, runs) -> None:
    """Set ``last_seconds`` on each step still running: how long it took the last time it ran
    to the end in this runs directory (the runner's history), to read "so far" against."""
    from pathlib import Path

    from orchestrator.history import load_history

    running = [s for s in status["steps"].values() if s.get("state") == "running"]
    if running and status.get("recipe"):
        history = load_history(Path(runs), Path(status["recipe"]))
        for name, s in status["steps"].items():
            last = (history.get(name) or {}).get("seconds")
            if s.get("state") == "running" and isinstance(last, (int, float)):
                s["last_seconds"] = last


def _sweep_status(sweep, as_json: bool) -> int:
    """One row per member of a sweep: the values swept, its state, the metrics that differ; then
    the sweep's state, each failed member's error and log, and the command that resumes it."""
    import json
    import os
    import sys

    from orchestrator.cli.common import from_here
    from orchestrator.cli.summary import member_state, print_sweep_table
    from orchestrator.logs import escape, report

    members, command, started_in = _members(sweep)
    states = [m["state"] for m in members]
    state = _sweep_state(states)
    if as_json:
        listed = [{k: v for k, v in m.items() if k != "steps"} for m in members]
        sys.stdout.write(json.dumps({"sweep": str(sweep), "state": state, "command": command,
                                     "members": listed}, indent=1) + "\n")
        return 0
    rows = [{**m, "state": member_state(m["state"], m["steps"])} for m in members]
    print_sweep_table(f"sweep {sweep}", rows, sweep=str(sweep))
    counts = {s: states.count(s) for s in dict.fromkeys(states)}
    line = f"sweep: {state} ({', '.join(f'{n} {s}' for s, n in counts.items())})"
    if state in ("interrupted", "failed") and command:
        line += ("; rerun the same command to resume: "
                 + from_here(command, started_in, os.getcwd()))
    report().print(escape(line), soft_wrap=True)
    failed = [m for m in members if m.get("error")]
    for m in failed[:5]:
        report().print(f"[red]✗ {m['member']}[/]: {escape(m['error'])}", soft_wrap=True)
    if len(failed) > 5:
        report().print(f"and {len(failed) - 5} more failed members", soft_wrap=True)
    first = next((m for m in members if m["state"] not in ("ok", "not started")), members[0])
    report().print(f"one member's steps: rag status {escape(str(sweep))}/{first['member']}",
                   soft_wrap=True)
    return 0


def _sweep_state(states: list[str]) -> str:
    """A sweep's state from its members'.

    >>> _sweep_state(["ok", "interrupted", "not started"]), _sweep_state(["ok", "running", "not started"])
    ('interrupted', 'running')
    """
    if "running" in states:
        return "running"
    if "interrupted" in states or "not started" in states:
        return "interrupted"
    return "failed" if "failed" in states or "damaged" in states else "ok"


def _members(sweep) -> tuple[list[dict], str | None, str | None]:
    """(members, command, folder) of a sweep: each member's record (``state: not started`` for
    one the sweep never reached, as ``sweep.json`` lists them), the command that ran it, and
    the folder it ran in (None for a record that does not say)."""
    import json

    from orchestrator.cli.common import read_status
    from orchestrator.errors import DataError
    from orchestrator.rundir import effective_state

    try:
        record = json.loads((sweep / "sweep.json").read_text())
        planned, command = list(record["members"]), record.get("command")
        started_in = record.get("cwd")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):   # none (an old sweep)
        planned, command, started_in = [], None, None
    paths = sorted(sweep.glob("member-*"))
    names = [f"member-{i:04d}" for i in range(len(planned))]
    names += [p.name for p in paths if p.name not in names]
    members = []
    for i, name in enumerate(names):
        member = {"member": name, "run": None, "overrides": planned[i] if i < len(planned) else [],
                  "state": "not started", "ran": 0, "cached": 0, "failed": 0, "metrics": {},
                  "steps": {}}
        members.append(member)
        if not (sweep / name / "status.json").exists():
            continue
        member["run"] = str(sweep / name)
        try:
            status = read_status(sweep / name)
        except DataError as e:
            member.update(state="damaged", error=e.message)
            continue
        steps = status["steps"]
        member.update(overrides=status.get("overrides") or member["overrides"],
                      state=effective_state(status), metrics=status.get("metrics") or {},
                      steps=steps,
                      ran=sum(s.get("state") == "done" and s.get("cache") == "miss"
                              for s in steps.values()),
                      cached=sum(s.get("cache") == "hit" for s in steps.values()),
                      failed=sum(s.get("state") == "failed" for s in steps.values()))
        errors = [f"{n}: {s.get('error')}" + (f"  log: {s['log']}" if s.get("log") else "")
                  for n, s in steps.items() if s.get("state") == "failed"]
        if status.get("error") or errors:
            member["error"] = status.get("error") or errors[0]
        command = command or status.get("command")
        started_in = started_in or status.get("cwd")
    return members, command, started_in
