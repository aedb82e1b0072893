"""``rag stages``: every registered stage, grouped by the package that defines it, with its
inputs, outputs and config fields. ``rag stages NAME`` also says how to wire each input (which
stages produce it, or a file under ``sources:``, and whether it may be left out), how to read the
outputs, and shows a step that uses the stage in a shipped recipe, with its file:line."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = """examples:
  rag stages                 # all stages
  rag stages retrieve        # one stage: how to wire each input, an example step from conf/
  rag stages dynamicrag.label
  rag stages --json"""

_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
_SHOWN = 5   # producers named per input; the rest are counted


def add_arguments(p) -> None:
    p.add_argument("name", nargs="?", help="one stage")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="also import stages from this module")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def type_text(tp) -> str:
    """A config field's type as a user reads it, with its choices and range.

    >>> from typing import Annotated, Literal
    >>> from annotated_types import Ge
    >>> type_text(Annotated[int, Ge(1)] | None), type_text(Literal["a", "b"])
    ('int >= 1 | None', "one of ['a', 'b']")
    >>> type_text(list[Annotated[int, Ge(1)]]), type_text(dict[str, Annotated[int, Ge(0)]])
    ('list[int >= 1]', 'dict[str, int >= 0]')
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
    if origin in (list, tuple, set, dict) and typing.get_args(tp):
        return f"{origin.__name__}[{', '.join(type_text(a) for a in typing.get_args(tp))}]"
    return "None" if tp is type(None) else type_name(tp)


def _bounds(metadata) -> list[str]:
    """``[">= 1"]`` from ``Ge(1)`` (annotated_types) or ``Field(ge=1)`` (pydantic: its .metadata)."""
    out = []
    for m in metadata:
        for c in [m, *getattr(m, "metadata", [])]:
            out += [f"{sym} {getattr(c, attr)}" for attr, sym in _BOUNDS
                    if getattr(c, attr, None) is not None]
    return out


def _section(tp) -> list[str]:
    """The field names of a nested config section (``reader: EndpointConfig | None``), else []."""
    import dataclasses
    import typing

    args = typing.get_args(tp) if typing.get_origin(tp) is not typing.Annotated else ()
    for t in (tp, *args):
        if isinstance(t, type) and dataclasses.is_dataclass(t):
            return [f.name for f in dataclasses.fields(t)]
    return []


def describe(spec) -> dict:
    import dataclasses
    import typing

    fields = {}
    nonsem = spec.nonsemantic_fields()
    hints = typing.get_type_hints(spec.config_cls, include_extras=True) if spec.config_cls else {}
    for name, f in spec.config_fields().items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        fields[name] = {"type": type_text(hints.get(name, f.type)), "default": default,
                        "in_cache_key": name not in nonsem,
                        "section": _section(hints.get(name, f.type))}
    return {"name": spec.name, "version": spec.version, "module": spec.module,
            "package": spec.module.rsplit(".", 1)[0],
            "shard_by": spec.shard_by, "multi_gpu": spec.multi_gpu,
            "inputs": {n: {"type": i.type.__name__, "optional": i.optional, "kind": i.type.kind,
                           "fills": list(getattr(i.type, "fills", ()) or ()),
                           "needs": list(getattr(i.type, "needs", ()) or ())}
                       for n, i in spec.inputs.items()},
            "outputs": {n: t.__name__ for n, t in spec.outputs.items()},
            "config": fields, "doc": spec.doc}


def producers(consumer: type, registry: dict) -> list[str]:
    """The registered stages whose output fits ``consumer`` (the check ``rag plan`` makes on a
    wire), as ``stage`` or ``stage (.output)``: those that write the type itself first (others
    fit by carrying its columns), shared stages before a recipe's, those of the type's own
    module before others (a project's stages beside its types), then by name."""
    from orchestrator.dag import edge_problems

    found = []
    for spec in registry.values():
        fits = [o for o, t in spec.outputs.items()
                if t.kind == consumer.kind and not edge_problems(consumer, t)]
        if fits:
            exact = any(issubclass(spec.outputs[o], consumer) for o in fits)
            single = len(spec.outputs) == 1
            name = spec.name if single else f"{spec.name} ({', '.join('.' + o for o in fits)})"
            beside = spec.module == consumer.__module__
            found.append(((not exact, "." in spec.name, not beside, spec.name), name))
    return [name for _, name in sorted(found)]


def _conf_dir(module: str) -> Path | None:
    """The ``conf/`` folder of the project that holds a stage's module (the repository's, for
    the shipped stages; the one a wheel installs beside them), or None."""
    import sys

    file = getattr(sys.modules.get(module), "__file__", None)
    for parent in Path(file).resolve().parents if file else ():
        if (parent / "conf").is_dir():
            return parent / "conf"
    return None


def shipped_uses(spec) -> list[dict]:
    """The steps of the recipes in the stage's project ``conf/`` that use it: file, line, step,
    the step's text, and the existing files its file/directory inputs are wired to, best example
    first (fewest ``${...}`` references to other sections, a demo before a paper recipe)."""
    import yaml

    conf = _conf_dir(spec.module)
    uses = []
    for path in sorted(conf.rglob("*.yaml")) if conf else ():
        text = path.read_text(errors="replace")
        if spec.name not in text:
            continue
        try:
            root = yaml.compose(text)
        except yaml.YAMLError:
            continue
        for key, body in _step_nodes(root):
            if _scalar(body, "stage") == spec.name:
                uses.append({"file": str(path), "short": str(path.relative_to(conf.parent)),
                             "line": key.start_mark.line + 1, "step": key.value,
                             "text": _block(text, key, body),
                             "files": _wired_files(root, body, spec, conf.parent)})
    return sorted(uses, key=lambda u: (u["text"].count("${"), "demo" not in u["file"], len(u["text"])))


def _scalar(node, key: str):
    import yaml

    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v.value if isinstance(v, yaml.ScalarNode) else v
    return None


def _step_nodes(node):
    """(key, body) of every mapping with a ``stage`` key, at any depth (``repeat:`` blocks too)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(v, yaml.MappingNode) and _scalar(v, "stage") is not None:
                yield k, v
            else:
                yield from _step_nodes(v)


def _block(text: str, key, body) -> str:
    """The step's lines, from its key to its last line, dedented to the key."""
    lines = text.splitlines()[key.start_mark.line:body.end_mark.line + 1]
    col = key.start_mark.column
    keep = lines[:1]
    for line in lines[1:]:
        if line.strip() and (len(line) - len(line.lstrip())) <= col:
            break
        keep.append(line)
    while keep and (not keep[-1].strip() or keep[-1].strip().startswith("#")):
        keep.pop()
    return "\n".join(line[col:] for line in keep)


def _wired_files(root, body, spec, project: Path) -> dict[str, str]:
    """Input -> the existing file or folder a step's source wire names, looked up in the same
    file's ``sources:`` (through one ``${section.key}`` reference)."""
    import re

    out = {}
    inputs, sources = _scalar(body, "inputs"), _scalar(root, "sources")
    for name, ispec in spec.inputs.items():
        wire = _scalar(inputs, name)
        if ispec.type.kind not in ("file", "dir") or not isinstance(wire, str) or "." in wire:
            continue
        value = _scalar(sources, wire)
        ref = re.fullmatch(r"\$\{([\w\-]+)\.([\w\-]+)\}", value) if isinstance(value, str) else None
        if ref:
            value = _scalar(_scalar(root, ref.group(1)), ref.group(2))
        if isinstance(value, str) and value and (project / value).exists():
            out[name] = str((project / value).resolve())
    return out


def main(args) -> int:
    import json
    import sys

    from orchestrator.dag import stage_import_error
    from orchestrator.errors import ConfigError
    from orchestrator.logs import report
    from orchestrator.registry import get_stage, load_stages

    try:
        registry = load_stages(args.imports)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - what a module of --import raised: its file:line
        raise stage_import_error(e) from (None if isinstance(e, SyntaxError) else e)
    specs = [get_stage(args.name, "rag stages")] if args.name else \
        [registry[n] for n in sorted(registry)]
    infos = [describe(s) for s in specs]
    if args.name:  # one stage: where each input can come from, and shipped steps that use it
        uses = shipped_uses(specs[0])
        for iname, i in infos[0]["inputs"].items():
            i["from_stages"] = producers(specs[0].inputs[iname].type, load_stages())
            i["shipped_files"] = sorted({u["files"][iname] for u in uses if iname in u["files"]})
        infos[0]["examples"] = uses
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
        c.print(info["doc"], markup=False, soft_wrap=True)
    if with_doc:
        _print_wiring(c, info)
    else:
        ins = ", ".join(f"{n}: {i['type']}{'?' if i['optional'] else ''}" for n, i in info["inputs"].items())
        c.print(f"  inputs:  {ins or '-'}", markup=False, soft_wrap=True)
        c.print(f"  outputs: {', '.join(f'{n}: {t}' for n, t in info['outputs'].items())}", markup=False, soft_wrap=True)
    if with_doc and info["config"]:
        c.print("  config (keys of the step, beside stage/inputs/shards/gpus; each has the default "
                "shown):", markup=False, soft_wrap=True)
    for name, f in info["config"].items():
        note = "" if f["in_cache_key"] else "  (not in cache key)"
        section = f"  (a section: {', '.join(f['section'])})" if with_doc and f["section"] else ""
        indent = "    " if with_doc else "  "   # under its "config" heading
        c.print(f"{indent}{name}: {f['type']} = {f['default']!r}{note}{section}", markup=False,
                soft_wrap=True)
    if with_doc:
        _print_example(c, info)


def _print_wiring(c, info: dict) -> None:
    """One line per input: its type, required or optional, and where it can come from."""
    if not info["inputs"]:
        c.print("  inputs:  - (none: leave inputs: out)", markup=False, soft_wrap=True)
    else:
        c.print("  inputs (inputs: {NAME: STEP, STEP.OUTPUT, or SOURCE: a name under sources: "
                "with a path}):", markup=False, soft_wrap=True)
    for name, i in info["inputs"].items():
        need = "optional: leave it out or null" if i["optional"] else "required"
        where = []
        if i["kind"] in ("file", "dir"):
            what = "a file" if i["kind"] == "file" else "a folder"
            if i["fills"]:
                what = ("a prompt YAML file whose `user` may use "
                        + ", ".join("{" + f + "}" for f in i["fills"]))
                if i["needs"]:
                    what += " and must use " + ", ".join("{" + f + "}" for f in i["needs"])
            where.append(f"a SOURCE ({what})")
        stages = i.get("from_stages") or []
        if stages:
            more = f", +{len(stages) - _SHOWN} more" if len(stages) > _SHOWN else ""
            where.append(f"a step of stage {', '.join(stages[:_SHOWN])}{more}")
        elif i["kind"] not in ("file", "dir"):
            where.append("a step's output (no registered stage writes one)")
        c.print(f"    {name}: {i['type']}  {need}; {' or '.join(where)}", markup=False, soft_wrap=True)
        files = i.get("shipped_files") or []
        if files:
            c.print(f"      shipped recipes wire: {', '.join(files[:3])}"
                    + (f" (+{len(files) - 3} more)" if len(files) > 3 else ""), markup=False, soft_wrap=True)
    outs = info["outputs"]
    if len(outs) == 1:
        (name, tp), = outs.items()
        c.print(f"  outputs: {name}: {tp}  (its only output: wire STEP, or STEP.{name})", markup=False, soft_wrap=True)
    else:
        c.print(f"  outputs: {', '.join(f'{n}: {t}' for n, t in outs.items())}  (wire "
                f"{' / '.join('STEP.' + n for n in outs)}; an output nothing reads is fine)",
                markup=False, soft_wrap=True)


def _print_example(c, info: dict) -> None:
    uses = info.get("examples") or []
    if not uses:
        return
    best, rest = uses[0], uses[1:]
    places = ", ".join(f"{u['short']}:{u['line']}" for u in rest[:3])
    also = (f"; also {places}" + (f" and {len(rest) - 3} more" if len(rest) > 3 else "")
            if rest else "")
    c.print(f"  example, {best['file']}:{best['line']}{also}:", markup=False, soft_wrap=True)
    for line in best["text"].splitlines():
        c.print(f"    {line}", markup=False, soft_wrap=True)
    if "${" in best["text"]:
        c.print("  (a ${section.key} value is read from another section of that recipe: write "
                "the value itself, or copy the section)", markup=False, soft_wrap=True)
