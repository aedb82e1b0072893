"""Resolve a step's inputs and task keys: the one place that turns wires into Refs and keys.

Used by ``plan`` (what would run, and why) and by the runner (what to run now). A step's inputs
are its upstream steps' output Refs (or a recipe source's content-hashed Ref); its task keys hash
{stage, version, semantic config, input content hashes, shard} (``orchestrator.keys``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.artifacts import Ref
from orchestrator.dag import Dag, Step
from orchestrator.hashing import SourceMemo, hash_strings
from orchestrator.locate import locate_source
from orchestrator.keys import material, task_key
from orchestrator.store import Store


@dataclass(frozen=True)
class TaskKey:
    """One task of a step: its shard (None: unsharded), key material and key."""
    shard: tuple[int, int] | None
    material: dict
    key: str


_MISSING = re.compile(r"(?:^|: )source '([^']+)': ")


def missing_source(problem: str) -> str | None:
    """The source a plan problem says is missing (``source_refs``), or None for another problem.

    >>> missing_source("conf/r.yaml:7: source 'corpus': c.tsv does not exist (looked in /w)")
    'corpus'
    >>> missing_source("steps.index.inputs.corpus: source 'corpus' has no path; set it") is None
    True
    """
    found = _MISSING.search(problem)
    return found.group(1) if found else None


def source_refs(dag: Dag, memo: SourceMemo, problems: list[str],
                notes: list[str] | None = None,
                overrides: list[str] | None = None) -> dict[str, Ref | None]:
    """Content-hashed Refs of the recipe's sources (None when a source's path is null, or when
    no step reads it: it is neither hashed nor required to exist); a source found only in the
    recipe's project directory gets a line in ``notes``. A missing one is a problem that starts
    with where its path is set (``where.set_at``: the recipe's line, or the override of
    ``overrides``, the command line's, that set it)."""
    read = {w.node for step in dag.steps.values() for w in step.inputs.values() if w.output is None}
    refs: dict[str, Ref | None] = {}
    elsewhere: dict[str, list[tuple]] = {}  # where found instead -> [(source, path)]
    for name, path in dag.sources.items():
        if path is None or name not in read:
            refs[name] = None
            continue
        if not str(path).strip():   # ``data.x=''``: would read the current directory
            from orchestrator.where import set_at

            problems.append(f"{set_at(Path(dag.recipe), f'sources.{name}', overrides)}: "
                            f"source '{name}': the path is empty; set a path, or null to leave "
                            "it out")
            refs[name] = Ref("file", "", "missing:", [""], producer=f"source {name}")
            continue
        p, tried = locate_source(path, dag.recipe)
        if p is None:
            from orchestrator.where import set_at

            problems.append(f"{set_at(Path(dag.recipe), f'sources.{name}', overrides)}: "
                            f"source '{name}': {path} does not exist"
                            + (f" ({tried})" if tried else "")
                            + ("; a $ is not expanded in a path: write ${oc.env:NAME}"
                               if "$" in str(path) else ""))
            refs[name] = Ref("file", "", f"missing:{path}", [str(Path(path).expanduser())],
                             producer=f"source {name}")
            continue
        if tried:
            elsewhere.setdefault(tried, []).append((name, path))
        kind = "dir" if p.is_dir() else "file"
        try:
            digest = memo.hash(p)
        except OSError as e:   # a broken link in a folder, a file removed meanwhile, no access
            from orchestrator.where import set_at

            why = ("a broken link, or a file removed while it was read"
                   if isinstance(e, FileNotFoundError) else e.strerror or type(e).__name__)
            problems.append(f"{set_at(Path(dag.recipe), f'sources.{name}', overrides)}: "
                            f"source '{name}': {e.filename} cannot be read ({why}); fix or "
                            "remove it, or point the source elsewhere")
            refs[name] = Ref(kind, "", f"missing:{path}", [str(Path(path).expanduser())],
                             producer=f"source {name}")
            continue
        refs[name] = Ref(kind, "", digest, [as_written(p)], producer=f"source {name}")
    for tried, found in elsewhere.items() if notes is not None else ():
        if len(found) == 1:
            notes.append(f"source '{found[0][0]}': {found[0][1]} {tried}")
        else:   # one line for all the sources read from one other folder
            names = ", ".join(f"'{name}'" for name, _ in found)
            notes.append(f"{len(found)} sources {tried.replace('; read', ', read', 1)}: {names}")
    return refs


def as_written(path: Path) -> str:
    """A source's path as the user wrote it, made absolute, its links kept: a set is named after
    the file's own name, and a Hugging Face Hub snapshot links each file to a blob without a
    suffix. Only what comes before a ``..`` is resolved, as the system resolves it: the parent
    of a linked folder is the parent of its target (``os.path.abspath`` would drop the link and
    its ``..`` as text, and read another file than the one hashed).

    >>> import os, tempfile
    >>> root = Path(tempfile.mkdtemp()).resolve()
    >>> os.makedirs(root / "real" / "sub"); os.symlink(root / "real" / "sub", root / "link")
    >>> [as_written(root / p)[len(str(root)):] for p in ("link/x.jsonl", "link/../x.jsonl")]
    ['/link/x.jsonl', '/real/x.jsonl']
    """
    path = path if path.is_absolute() else Path.cwd() / path
    if ".." in path.parts:
        last = len(path.parts) - 1 - path.parts[::-1].index("..")
        path = Path(os.path.realpath(Path(*path.parts[:last + 1]))).joinpath(
            *path.parts[last + 1:])
    return os.path.normpath(path)


def input_refs(step: Step, outputs: dict[str, dict[str, Ref]], sources: dict[str, Ref | None],
               problems: list[str] | None = None) -> dict[str, Ref | None]:
    """The Refs feeding ``step`` (None: optional input left out, or upstream not computed yet)."""
    refs: dict[str, Ref | None] = {}
    for name, wire in step.inputs.items():
        if wire.output is None:
            ref = sources.get(wire.node)
            if ref is None and not step.stage.inputs[name]["optional"] and problems is not None:
                problems.append(f"steps.{step.name}.inputs.{name}: source '{wire.node}' has no path; "
                                f"set it under sources: in the recipe, or on the command line: "
                                f"sources.{wire.node}=PATH")
            refs[name] = ref
        else:
            refs[name] = outputs.get(wire.node, {}).get(wire.output)
    return refs


def input_hashes(refs: dict[str, Ref | None], step: Step | None = None) -> dict[str, str | None]:
    """Input name -> content hash (None for an input left out). A source read by an input whose
    type names parts of its path (``Artifact.key_names``: a question file's set name comes from
    its file name) hashes those names too, so renaming the file is another key."""
    out = {n: (r.content_hash if r is not None else None) for n, r in refs.items()}
    for n, r in refs.items():
        named = step.stage.inputs.get(n, {}).get("names") if step is not None else None
        if named and r is not None and step.inputs[n].output is None and r.paths:
            import importlib

            module, _, qualname = named.partition(":")
            names = getattr(importlib.import_module(module), qualname).key_names(Path(r.paths[0]))
            if names:
                out[n] = hash_strings([r.content_hash, *names])
    return out


def shard_specs(step: Step) -> list[tuple[int, int] | None]:
    return [None] if step.shards == 1 else [(i, step.shards) for i in range(step.shards)]


def step_keys(step: Step, hashes: dict[str, str | None]) -> list[TaskKey]:
    """The step's tasks (one per shard) with their key material and keys; remembered on the
    step per distinct ``hashes`` (a sweep plans a shared upstream step once, not per member)."""
    slot = tuple(hashes.items())
    known = step.task_keys.get(slot)
    if known is None:
        known = []
        for shard in shard_specs(step):
            mat = material(step.stage.name, step.stage.version, step.semantic, hashes, shard)
            known.append(TaskKey(shard, mat, task_key(mat)))
        step.task_keys[slot] = known
    return list(known)


def gather(step: Step, entries: list, store: Store) -> dict[str, Ref]:
    """Output Refs of a step from its task entries, shards concatenated in order."""
    if len(entries) == 1:
        return entries[0].outputs()
    per = [e.outputs() for e in entries]
    out = {}
    for name in step.stage.outputs:
        parts = [p[name] for p in per]
        first = parts[0]
        digest = hash_strings([p.content_hash for p in parts])
        if first.kind == "table":
            paths = [x for p in parts for x in p.paths]
            rows = [x for p in parts for x in p.rows]
            out[name] = Ref("table", first.type, digest, paths, rows, f"{step.name}.{name}")
        else:
            path = store.gather_dir(parts)
            out[name] = Ref(first.kind, first.type, digest, [str(path)], [], f"{step.name}.{name}")
    return out
