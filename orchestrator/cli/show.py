"""``rag show``: an artifact of a run: its type, schema, row count and first rows; for a directory,
its files and sizes; with the manifest it was written with."""

from __future__ import annotations

import json
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


def read_manifest(d: Path, step: str) -> dict:
    from orchestrator.errors import DataError

    path = d / "_manifest.json"
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError("not an artifact manifest (no 'kind')")
        return data
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: {_why(e)}; the cached artifact is damaged",
                        hint=f"`rag verify` checks the cache; recompute it with rag run RECIPE "
                             f"--force {step}") from None


def _why(e: Exception) -> str:
    if isinstance(e, FileNotFoundError):
        return "missing"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def table_info(dirs: list[Path], manifests: list[dict], n: int, step: str) -> tuple[dict, list]:
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
                            hint=f"recompute it with rag run RECIPE --force {step}") from None
    return info, rows


def dir_info(dirs: list[Path]) -> dict:
    """Files (relative to the artifact's ``data/``, prefixed by shard) and their sizes."""
    files: dict[str, int] = {}
    total = 0
    for i, d in enumerate(dirs):
        data = d / "data"
        for p in sorted(data.rglob("*")):
            if p.is_file():
                size = p.stat().st_size
                total += size
                prefix = f"shard-{i:05d}/" if len(dirs) > 1 else ""
                files[prefix + str(p.relative_to(data))] = size
    return {"size": f"{total} bytes in {len(files)} file(s)", "files": files}


def matching(links: list[str], name: str) -> list[str]:
    """The artifact links (``STEP.OUTPUT``) that ``rag show NAME`` names.

    >>> matching(["load.corpus", "load.train", "sft.out"], "load"), matching(["sft.out"], "sft")
    (['load.corpus', 'load.train'], ['sft.out'])
    """
    return [l for l in links if l == name or l == f"{name}.out" or l.startswith(f"{name}.")]


def _step_state(run: Path, step: str) -> dict | None:
    """The step's record in the run's status.json (None: no such step, or no readable record)."""
    try:
        return json.loads((run / "status.json").read_text())["steps"].get(step)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _command(run: Path) -> str:
    """The command that made ``run`` (from its record), or a generic one."""
    try:
        command = json.loads((run / "status.json").read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        command = None
    return command if isinstance(command, str) and command else "rag run RECIPE"


def _not_one(args, run: Path, links: list[str], matches: list[str]):
    """The error for a name that matches no artifact of ``run`` (or several)."""
    import shlex

    from orchestrator.cli.common import newest_run_with, runs_dir
    from orchestrator.errors import ConfigError, did_you_mean

    name = args.step
    if matches:
        return ConfigError(f"step '{name}' has several outputs; name one: " + ", ".join(matches),
                           hint=f"rag show {matches[0]}"
                                + (f" --run {shlex.quote(args.run)}" if args.run else ""))
    # the latest run stopped early (or was refused): an older run may have the artifact
    other = None if args.run else newest_run_with(
        runs_dir(args), lambda r: matching([p.name for p in (r / "artifacts").glob("*")], name))
    elsewhere = f"the newest run that has it: rag show {name} --run {other}"
    step_state = _step_state(run, name)
    if step_state and step_state.get("state") in ("failed", "skipped", "interrupted"):
        return ConfigError(f"step '{name}' {step_state['state']} in run {run.name}: it has no "
                           "output" + (f" ({step_state['error']})" if step_state.get("error")
                                       else ""),
                           hint=f"its log: {step_state.get('log')}" if step_state.get("log")
                           else elsewhere if other else "rag status shows why")
    hint = (f"artifacts: {', '.join(l.removesuffix('.out') for l in links)}" if links
            else "this run recorded no artifacts; rag status lists its steps, "
                 "rag show STEP --run NAME reads another run")
    return ConfigError(f"run {run.name} has no artifact '{name}'"
                       f"{did_you_mean(name, [l.removesuffix('.out') for l in links])}",
                       hint=elsewhere if other else hint)


def main(args) -> int:
    import sys

    from orchestrator.cli.common import find_run, runs_dir
    from orchestrator.errors import DataError
    from orchestrator.logs import escape, report

    run = find_run(runs_dir(args), args.run)
    links = sorted(p.name for p in (run / "artifacts").glob("*")) if (run / "artifacts").is_dir() else []
    matches = matching(links, args.step)
    if len(matches) != 1:
        raise _not_one(args, run, links, matches)
    step = matches[0].split(".")[0]
    link = run / "artifacts" / matches[0]
    dirs = artifact_dirs(link)
    gone = next((d for d in dirs if not d.is_dir()), None)
    entry = next((p.parent for p in (gone.parents if gone else []) if p.name == "outputs"), None)
    if entry is not None and (entry / "_entry.json").is_file():   # the entry is there: damaged
        raise DataError(f"{matches[0].removesuffix('.out')} of run {run.name}: {gone} is missing "
                        "from its cache entry; the cached artifact is damaged",
                        hint="rerun the run's command: it sets the damaged entry aside and "
                             f"recomputes it (its other steps are reused): {_command(run)}")
    if gone is not None:   # its cache entry is gone as a whole
        raise DataError(f"{matches[0].removesuffix('.out')} of run {run.name} is no longer in the "
                        f"cache (removed by rag gc, or the cache moved): {gone}",
                        hint="recompute it by rerunning the run's command (its other steps are "
                             f"reused): {_command(run)}")
    manifests = [read_manifest(d, step) for d in dirs]
    manifest = manifests[0]
    info = {"artifact": matches[0].removesuffix(".out"), "type": manifest.get("type"),
            "kind": manifest["kind"], "path": str(link.resolve())}
    if len(dirs) > 1:
        info["shards"] = len(dirs)
    rows: list[dict] = []
    if manifest["kind"] == "table":
        more, rows = table_info(dirs, manifests, args.rows, step)
        info.update(more)
    elif manifest["kind"] == "metrics":
        try:
            info["metrics"] = json.loads((dirs[0] / "metrics.json").read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{dirs[0] / 'metrics.json'}: {_why(e)}; the cached artifact is damaged",
                            hint=f"recompute it with rag run RECIPE --force {step}") from None
    else:
        info.update(dir_info(dirs))
    info["manifest"] = {k: v for k, v in manifest.items() if k not in ("columns", "files", "hashes")}
    if args.json:
        sys.stdout.write(json.dumps({**info, "first_rows": rows}, indent=1, default=str) + "\n")
        return 0
    c = report()
    for k, v in info.items():
        if isinstance(v, dict):
            if k == "manifest" and len(manifests) > 1:   # one per shard: the first is shown
                k = f"manifest (shard 1 of {len(manifests)})"
            c.print(f"[bold]{k}[/]:")
            for kk, vv in list(v.items())[:MAX_FILES]:
                c.print(f"  {kk}: {vv}", soft_wrap=True, markup=False)
            if len(v) > MAX_FILES:
                c.print(f"  … {len(v) - MAX_FILES} more")
        else:
            c.print(f"[bold]{k}[/]: {escape(str(v))}", soft_wrap=True)
    for i, row in enumerate(rows):
        text = json.dumps(row, default=str, ensure_ascii=False)
        c.print(f"row {i}: " + (text if len(text) < 600 else text[:600] + " …"),
                soft_wrap=True, markup=False)
    return 0
