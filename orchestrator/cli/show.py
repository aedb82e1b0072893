"""``rag show``: an artifact of a run: its type, schema, row count and first rows."""

from __future__ import annotations

EXAMPLES = """examples:
  rag show retrieve                  # the latest run's retrieve output
  rag show label.bc -n 3             # one output of a multi-output step
  rag show evaluate --run 20261121-101500
  rag show retrieve --json"""


def add_arguments(p) -> None:
    p.add_argument("step", help="STEP or STEP.OUTPUT")
    p.add_argument("--run", default=None, help="run directory or name (default: latest)")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("-n", "--rows", type=int, default=5, help="rows to print (default 5)")
    p.add_argument("--json", action="store_true")


def main(args) -> int:
    import json
    import sys
    from orchestrator.cli.common import find_run, runs_dir
    from orchestrator.errors import ConfigError, did_you_mean
    from orchestrator.logs import console

    run = find_run(runs_dir(args), args.run)
    links = sorted(p.name for p in (run / "artifacts").glob("*")) if (run / "artifacts").is_dir() else []
    name = args.step
    matches = [l for l in links if l == name or l == f"{name}.out" or l.startswith(f"{name}.")]
    if len(matches) != 1:
        if not matches:
            raise ConfigError(f"run {run.name} has no artifact '{name}'"
                              f"{did_you_mean(name, [l.removesuffix('.out') for l in links])}",
                              hint=f"artifacts: {', '.join(l.removesuffix('.out') for l in links)}")
        raise ConfigError(f"step '{name}' has several outputs; name one: "
                          + ", ".join(matches))
    path = (run / "artifacts" / matches[0]).resolve()
    shards = sorted(path.glob("shard-*")) if not (path / "_manifest.json").is_file() else [path]
    manifests = [json.loads((s / "_manifest.json").read_text()) for s in shards]
    manifest = manifests[0]
    info = {"artifact": matches[0].removesuffix(".out"), "type": manifest["type"],
            "kind": manifest["kind"], "path": str(path)}
    if len(shards) > 1:
        info["shards"] = len(shards)
    rows: list[dict] = []
    if manifest["kind"] == "table":
        import pyarrow.parquet as pq

        parts = [p for s in shards for p in sorted(s.resolve().glob("part-*.parquet"))]
        info["rows"] = sum(m.get("num_rows", 0) for m in manifests)
        info["columns"] = manifest.get("columns") or {
            f.name: str(f.type) for f in pq.read_schema(parts[0])}
        for part in parts:
            if len(rows) >= args.rows:
                break
            rows += pq.read_table(part).slice(0, args.rows - len(rows)).to_pylist()
    elif manifest["kind"] == "metrics":
        info["metrics"] = json.loads((path / "metrics.json").read_text())
    else:
        info["files"] = manifest.get("files")
    if args.json:
        sys.stdout.write(json.dumps({**info, "first_rows": rows}, indent=1, default=str) + "\n")
        return 0
    c = console()
    for k, v in info.items():
        if isinstance(v, dict):
            c.print(f"[bold]{k}[/]:")
            for kk, vv in list(v.items())[:50]:
                c.print(f"  {kk}: {vv}", soft_wrap=True, markup=False)
        else:
            c.print(f"[bold]{k}[/]: {v}", soft_wrap=True)
    for i, row in enumerate(rows):
        text = json.dumps(row, default=str, ensure_ascii=False)
        c.print(f"row {i}: " + (text if len(text) < 600 else text[:600] + " …"),
                soft_wrap=True, markup=False)
    return 0
