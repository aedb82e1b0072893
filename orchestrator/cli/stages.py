"""``rag stages``: every registered stage, grouped by the package that defines it, with its
inputs, outputs and config fields."""

from __future__ import annotations

EXAMPLES = """examples:
  rag stages                 # all stages
  rag stages retrieve        # one stage, with its docstring
  rag stages dynamicrag.label
  rag stages --json"""


def add_arguments(p) -> None:
    p.add_argument("name", nargs="?", help="one stage")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="also import stages from this module")
    p.add_argument("--json", action="store_true")


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def type_text(tp) -> str:
    """A config field's type as a user reads it, with its choices and range.

    >>> from typing import Annotated, Literal
    >>> from annotated_types import Ge
    >>> type_text(Annotated[int, Ge(1)] | None), type_text(Literal["a", "b"])
    ('int >= 1 | None', "one of ['a', 'b']")
    """
    import types
    import typing

    from orchestrator.stage_config import type_name

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(a) for a in typing.get_args(tp))
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(tp)
        return " ".join([type_text(base), *_bounds(metadata)])
    return "None" if tp is type(None) else type_name(tp)


def _bounds(metadata) -> list[str]:
    """``[">= 1"]`` from ``Ge(1)`` (annotated_types) or ``Field(ge=1)`` (pydantic: its .metadata)."""
    out = []
    for m in metadata:
        for c in [m, *getattr(m, "metadata", [])]:
            out += [f"{sym} {getattr(c, attr)}" for attr, sym in _BOUNDS
                    if getattr(c, attr, None) is not None]
    return out


def describe(spec) -> dict:
    import dataclasses
    import typing

    fields = {}
    nonsem = spec.nonsemantic_fields()
    hints = typing.get_type_hints(spec.config_cls, include_extras=True) if spec.config_cls else {}
    for name, f in spec.config_fields().items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        fields[name] = {"type": type_text(hints.get(name, f.type)), "default": default,
                        "in_cache_key": name not in nonsem}
    return {"name": spec.name, "version": spec.version, "module": spec.module,
            "package": spec.module.rsplit(".", 1)[0],
            "shard_by": spec.shard_by, "multi_gpu": getattr(spec, "multi_gpu", "ranks"),
            "inputs": {n: {"type": i.type.__name__, "optional": i.optional} for n, i in spec.inputs.items()},
            "outputs": {n: t.__name__ for n, t in spec.outputs.items()},
            "config": fields, "doc": spec.doc}


def main(args) -> int:
    import json
    import sys

    from orchestrator.logs import report
    from orchestrator.registry import get_stage, load_stages

    registry = load_stages(args.imports)
    specs = [get_stage(args.name, "rag stages")] if args.name else \
        [registry[n] for n in sorted(registry)]
    infos = [describe(s) for s in specs]
    if args.json:
        sys.stdout.write(json.dumps(infos, indent=1, default=str) + "\n")
        return 0
    c = report()
    package = None
    for info in sorted(infos, key=lambda i: (i["package"], i["name"])):
        if info["package"] != package and not args.name:
            package = info["package"]
            c.print(f"\n[bold underline]{package}[/]")
        _print_stage(c, info, with_doc=bool(args.name))
    return 0


def _print_stage(c, info: dict, with_doc: bool) -> None:
    shard = f", shardable by {info['shard_by']}" if info["shard_by"] else ""
    shard += ", one process for all its GPUs" if info["multi_gpu"] == "one_process" else ""
    c.print(f"[bold]{info['name']}[/] v{info['version']}{shard}  [dim]{info['module']}[/]")
    if with_doc and info["doc"]:
        c.print(info["doc"], markup=False)
    ins = ", ".join(f"{n}: {i['type']}{'?' if i['optional'] else ''}" for n, i in info["inputs"].items())
    outs = ", ".join(f"{n}: {t}" for n, t in info["outputs"].items())
    c.print(f"  inputs:  {ins or '-'}", markup=False)
    c.print(f"  outputs: {outs}", markup=False)
    for name, f in info["config"].items():
        note = "" if f["in_cache_key"] else "  (not in cache key)"
        c.print(f"  {name}: {f['type']} = {f['default']!r}{note}", markup=False)
