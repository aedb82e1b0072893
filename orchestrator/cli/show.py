"""``rag show``: an artifact of a run: its type, schema, row count and first rows; for a directory,
its files and sizes; with the manifest it was written with."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

EXAMPLES = """examples:
  rag show retrieve_eval             # the latest run's retrieve_eval output
  rag show label.bc -n 3             # one output of a multi-output step
  rag show sft                       # a directory (a checkpoint): its files and sizes
  rag show evaluate.metrics --run 20261121-101500   # a run by name (default: the latest)
  rag show retrieve_eval --json"""

MAX_FILES = 50


def add_arguments(p) -> None:
    from orchestrator.cli.common import whole_number

    p.add_argument("step", help="STEP or STEP.OUTPUT")
    p.add_argument("--run", default=None,
                   help="run directory or name, or a sweep's member (default: the latest run)")
    p.add_argument("--runs-dir", default=None, help="where rag run wrote its runs (default: ./runs)")
    p.add_argument("-n", "--rows", type=whole_number(0), default=5,
                   help="rows to print, 0 or more (default 5)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def artifact_dirs(path: Path) -> list[Path]:
    """The artifact directories (each with ``_manifest.json``) behind a run's artifact link:
    the link itself, the parent of a directory artifact's ``data/``, or one per shard."""
    path = path.resolve()
    if (path / "_manifest.json").exists() or not any(path.glob("shard-*")):
        return [path.parent if path.name == "data" and not (path / "_manifest.json").exists()
                else path]
    out = []
    for shard in sorted(path.glob("shard-*")):
        s = shard.resolve()
        out.append(s.parent if s.name == "data" else s)
    return out


def read_manifest(d: Path, fix: str) -> dict:
    """The artifact's ``_manifest.json``; ``fix``: the command that recomputes it, for the hint."""
    from orchestrator.errors import DataError

    path = d / "_manifest.json"
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError("not an artifact manifest (no 'kind')")
        return data
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: {_why(e)}; the cached artifact is damaged",
                        hint=f"`rag verify` checks the cache; recompute it with {fix}") from None


def _why(e: Exception) -> str:
    if isinstance(e, FileNotFoundError):
        return "missing"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def table_info(dirs: list[Path], manifests: list[dict], n: int, fix: str) -> tuple[dict, list]:
    import pyarrow.parquet as pq

    from orchestrator.errors import DataError

    info: dict = {"rows": sum(m.get("num_rows", 0) for m in manifests),
                  "columns": manifests[0].get("columns")}
    rows: list[dict] = []
    for part in [p for d in dirs for p in sorted(d.glob("part-*.parquet"))]:
        try:
            if not info["columns"]:
                info["columns"] = {f.name: str(f.type) for f in pq.read_schema(part)}
            if len(rows) < n:   # the first batch only, not the whole part
                batch = next(pq.ParquetFile(part).iter_batches(batch_size=n - len(rows)), None)
                rows += batch.to_pylist() if batch is not None else []
        except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise DataError(f"{part}: {_why(e)}; the cached artifact is damaged",
                            hint=f"recompute it with {fix}") from None
    return info, rows


def dir_info(dirs: list[Path]) -> dict:
    """Files (relative to the artifact's ``data/``, prefixed by shard) and their sizes, in path
    order (walked with strings: an 80,000-file artifact took 2.4 s as ``Path`` objects)."""
    files: dict[str, int] = {}
    total = 0
    for i, d in enumerate(dirs):
        data = str(d / "data")
        prefix = f"shard-{i:05d}/" if len(dirs) > 1 else ""
        found = []
        for root, _, names in os.walk(data):
            for name in names:
                full = os.path.join(root, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.append((full[len(data) + 1:].split(os.sep), st.st_size))
        for parts, size in sorted(found):
            total += size
            files[prefix + "/".join(parts)] = size
    return {"size": f"{total} bytes in {len(files)} file(s)", "files": files}


def matching(links: list[str], name: str) -> list[str]:
    """The artifact links (``STEP.OUTPUT``) that ``rag show NAME`` names.

    >>> matching(["load.corpus", "load.train", "sft.out"], "load"), matching(["sft.out"], "sft")
    (['load.corpus', 'load.train'], ['sft.out'])
    """
    return [l for l in links if l == name or l == f"{name}.out" or l.startswith(f"{name}.")]


def _record(run: Path) -> dict:
    """The run's status.json ({} when it cannot be read: the callers fall back to generic text)."""
    try:
        record = json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _step_state(run: Path, step: str) -> dict | None:
    """The step's record in the run's status.json (None: no such step, or no readable record)."""
    try:
        state = _record(run)["steps"].get(step)
    except (KeyError, TypeError, AttributeError):
        return None
    return state if isinstance(state, dict) else None


def _command(run: Path) -> str:
    """The command that made ``run`` (from its record), or a generic one."""
    command = _record(run).get("command")
    return command if isinstance(command, str) and command else "rag run RECIPE"


def _rerun(args, run: Path) -> str:
    """The command that made ``run``, as it reruns from here: after a ``cd`` to the folder it
    ran in when that is another (its relative paths meant that folder), else with the
    ``--runs-dir`` the user passed."""
    from orchestrator.cli.common import from_here

    command = _command(run)
    there = from_here(command, _record(run).get("cwd"), os.getcwd())
    return there if there != command else _with_runs_dir(args, command)


def _with_runs_dir(args, command: str) -> str:
    """``command`` as a hint prints it: with the ``--runs-dir`` the user passed, so that,
    pasted, it reads the same runs (``common.rag_command``)."""
    from orchestrator.cli.common import rag_command, runs_dir

    return rag_command(command, runs_dir(args))


def _status_command(args) -> str:
    """``rag status`` of the run ``rag show`` read, as a hint prints it."""
    import shlex

    return _with_runs_dir(args, "rag status" + (f" {shlex.quote(args.run)}" if args.run else ""))


def _unfinished(args, run: Path, step: str):
    """The error for a step of a run still going that has not written its output yet (running,
    or not started), or None. A record left ``running`` by a killed run is not one of them."""
    from orchestrator.errors import ConfigError
    from orchestrator.rundir import effective_state

    record = _record(run)
    if not record or effective_state(record) != "running":
        return None
    state = _step_state(run, step)
    if state is not None and state.get("state") == "running":
        return ConfigError(f"step '{step}' is still running in run {run.name}: its output is not "
                           "written yet", hint=f"{_status_command(args)} shows its progress")
    try:
        planned = {s.get("step") for s in json.loads((run / "plan.json").read_text())["steps"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        planned = set()
    if state is None and step in planned:
        return ConfigError(f"step '{step}' has not started yet in run {run.name}, which is still "
                           "running", hint=f"{_status_command(args)} shows its progress")
    return None


def _not_one(args, run: Path, links: list[str], matches: list[str]):
    """The error for a name that matches no artifact of ``run`` (or several)."""
    import shlex

    from orchestrator.cli.common import newest_run_with, runs_dir
    from orchestrator.errors import ConfigError, did_you_mean

    name = args.step
    if matches:
        return ConfigError(f"step '{name}' has several outputs; name one: " + ", ".join(matches),
                           hint=_with_runs_dir(args, f"rag show {matches[0]}" + (
                               f" --run {shlex.quote(args.run)}" if args.run else "")))
    step = name.split(".")[0]
    unfinished = _unfinished(args, run, step)
    if unfinished is not None:
        return unfinished
    # the latest run stopped early (or was refused): an older run may have the artifact
    other = None if args.run else newest_run_with(
        runs_dir(args), lambda r: matching([p.name for p in (r / "artifacts").glob("*")], name))
    elsewhere = other and "the newest run that has it: " + _with_runs_dir(
        args, f"rag show {name} --run {shlex.quote(other)}")
    step_state = _step_state(run, step) or {}
    state = "interrupted" if step_state.get("state") == "running" else step_state.get("state")
    if state in ("failed", "skipped", "interrupted"):   # running: the run was killed
        return ConfigError(f"step '{step}' {state} in run {run.name}: it has no "
                           "output" + (f" ({step_state['error']})" if step_state.get("error")
                                       else ""),
                           hint=f"its log: {step_state.get('log')}" if step_state.get("log")
                           else elsewhere or f"{_status_command(args)} shows why")
    hint = (f"artifacts: {', '.join(l.removesuffix('.out') for l in links)}" if links
            else f"this run recorded no artifacts; {_status_command(args)} lists its steps, "
                 f"{_with_runs_dir(args, 'rag show STEP --run NAME')} reads another run")
    near = did_you_mean(name, [l.removesuffix('.out') for l in links])
    if not links and not args.run and not other:   # a typo, read against the newest outputs
        near, hint = _near_elsewhere(args, name) or (near, hint)
    return ConfigError(f"run {run.name} has no artifact '{name}'{near}", hint=elsewhere or hint)


def _near_elsewhere(args, name: str) -> tuple[str, str] | None:
    """(did-you-mean, hint) from the newest run that recorded artifacts, when the latest one
    recorded none (it stopped on an error) and ``name`` is close to one of them."""
    import shlex

    from orchestrator.cli.common import newest_run_with, runs_dir
    from orchestrator.errors import closest

    runs = runs_dir(args)
    other = newest_run_with(runs, lambda r: any((r / "artifacts").glob("*")))
    if other is None:
        return None
    names = sorted({p.name.removesuffix(".out") for p in (runs / other / "artifacts").glob("*")})
    guess = closest(name, names)
    if guess is None:
        return None
    return f" (did you mean '{guess}'?)", "the newest run that has it: " + _with_runs_dir(
        args, f"rag show {shlex.quote(guess)} --run {shlex.quote(other)}")


def _name_the_member(args, run: Path) -> None:
    """When the latest run, read for want of ``--run``, is a member of a sweep (its last one):
    a line on stderr that names it with its values, and how to read another member. One run's
    artifact is shown, not the sweep's (as ``rag status`` would show it): the others are a
    ``--run`` away, and a step the members share has the same output in each."""
    import shlex

    from orchestrator.cli.common import sweep_of
    from orchestrator.logs import console, escape

    sweep = sweep_of(run)
    if sweep is None:
        return
    overrides = _record(run).get("overrides") or []
    values = f" ({' '.join(map(str, overrides))})" if overrides else ""
    other = _with_runs_dir(args, f"rag show {shlex.quote(args.step)} --run "
                                 f"{shlex.quote(sweep.name)}/member-0000")
    other = f"; another member: {other}" if run.name != "member-0000" else ""
    console().print(f"[yellow]note:[/] the latest run is a sweep: this is its member "
                    f"{escape(f'{sweep.name}/{run.name}{values}{other}')}", soft_wrap=True)


def check_cached(args, run: Path, art: str, step: str, dirs: list[Path]) -> None:
    """Check the cache entries behind ``dirs`` as every cache hit does (``Store.lookup``: the
    size and mtime of each file; a damaged entry is quarantined with a warning). A DataError
    when one is damaged, in quarantine, or gone (``rag gc``, a moved cache)."""
    from orchestrator.errors import DataError
    from orchestrator.store import Store, entry_of

    redo = ("recompute it by rerunning the run's command (its other steps are reused): "
            + _rerun(args, run))
    for d in dirs:
        where = entry_of(d)
        found = None
        if where is not None:
            store, key = Store(where[0]), where[1]
            found = store.lookup(key, step)
            if found is None and key in store.misses:   # found damaged now
                raise DataError(f"{art} of run {run.name} is damaged in the cache "
                                f"({store.misses[key]}); not shown", hint=redo)
            reason = store.miss_reason(key) if found is None else None
            if reason:
                raise DataError(f"{art} of run {run.name} is in the cache's quarantine, not in "
                                f"the cache: it was found damaged ({reason})", hint=redo)
        if found is not None and not d.is_dir():   # the entry is there, without this output
            raise DataError(f"{art} of run {run.name}: {d} is missing from its cache entry; the "
                            "cached artifact is damaged", hint="recompute it with "
                            + _with_runs_dir(args, f"rag run RECIPE --force {step}"))
        if not d.is_dir():   # its cache entry is gone as a whole
            raise DataError(f"{art} of run {run.name} is no longer in the cache (removed by rag "
                            f"gc, or the cache moved): {d}", hint=redo)


def _tidy(value):
    """A value as ``rag show`` prints it: floats to 12 significant digits, which drops the
    binary noise of a sum and keeps every digit a metric has (``--json`` keeps them all).

    >>> _tidy({"sum": 40.800000000000004, "per_set": [0.1 + 0.2, 3], "name": "nq"})
    {'sum': 40.8, 'per_set': [0.3, 3], 'name': 'nq'}
    """
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def main(args) -> int:
    import sys

    from orchestrator.cli.common import find_run, runs_dir
    from orchestrator.errors import DataError
    from orchestrator.logs import escape, report

    run = find_run(runs_dir(args), args.run)
    if args.run is None:
        _name_the_member(args, run)
    links = sorted(p.name for p in (run / "artifacts").glob("*")) if (run / "artifacts").is_dir() else []
    matches = matching(links, args.step)
    if len(matches) != 1:
        raise _not_one(args, run, links, matches)
    step = matches[0].split(".")[0]
    link = run / "artifacts" / matches[0]
    dirs = artifact_dirs(link)
    check_cached(args, run, matches[0].removesuffix(".out"), step, dirs)
    fix = _with_runs_dir(args, f"rag run RECIPE --force {step}")
    manifests = [read_manifest(d, fix) for d in dirs]
    manifest = manifests[0]
    info = {"artifact": matches[0].removesuffix(".out"), "type": manifest.get("type"),
            "kind": manifest["kind"], "path": str(link.resolve())}
    if len(dirs) > 1:
        info["shards"] = len(dirs)
    rows: list[dict] = []
    if manifest["kind"] == "table":
        more, rows = table_info(dirs, manifests, args.rows, fix)
        info.update(more)
    elif manifest["kind"] == "metrics":
        try:
            info["metrics"] = json.loads((dirs[0] / "metrics.json").read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{dirs[0] / 'metrics.json'}: {_why(e)}; the cached artifact is damaged",
                            hint=f"recompute it with {fix}") from None
    else:
        info.update(dir_info(dirs))
    info["manifest"] = {k: v for k, v in manifest.items() if k not in ("columns", "files", "hashes")}
    if len(manifests) > 1:   # one per shard: the first is shown (its num_rows is its own)
        info["manifest"]["shard"] = f"{step}[0/{len(manifests)}]"
    if args.json:
        sys.stdout.write(json.dumps({**info, "first_rows": rows}, indent=1, default=str) + "\n")
        return 0
    c = report()
    for k, v in info.items():
        if isinstance(v, dict):
            if k == "manifest" and len(manifests) > 1:   # labelled as a run labels its tasks
                # (0-based: mul[1/2] is the second of two)
                k = f"manifest (of the first shard, {v.pop('shard')})"
            c.print(f"[bold]{escape(k)}[/]:")
            for kk, vv in list(v.items())[:MAX_FILES]:
                c.print(f"  {kk}: {_tidy(vv)}", soft_wrap=True, markup=False)
            if len(v) > MAX_FILES:
                c.print(f"  … {len(v) - MAX_FILES} more")
        else:
            c.print(f"[bold]{k}[/]: {escape(str(v))}", soft_wrap=True)
    for i, row in enumerate(rows):
        text = json.dumps(row, default=str, ensure_ascii=False)
        c.print(f"row {i}: " + (text if len(text) < 600 else text[:600] + " …"),
                soft_wrap=True, markup=False)
    return 0
