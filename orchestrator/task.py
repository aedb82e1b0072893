"""Run one task (a step, or one shard of it) and commit its outputs to the store.

The same function runs in the runner's process (light steps) and in a worker subprocess (shards,
GPU steps): take the key's lock, reuse the entry if another process made it meanwhile, call the
stage, write and hash its outputs in a temporary directory, rename it into place.

A stage that breaks its contract (writes into an input) or fails on a damaged cache entry raises
``RagError``, and one that returns what its declared outputs cannot hold (a tuple for a
NamedTuple, rows without a declared column, a metric that is not JSON) ``StageOutputError``,
naming the stage and its module: not ``DataError``, the user's input is not at fault.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator.artifacts import Ref, write_artifact
from orchestrator.context import StageContext
from orchestrator.errors import RagError, StageOutputError, disk_full
from orchestrator.hashing import hash_strings
from orchestrator.keys import scratch_key
from orchestrator.leases import PLACE_ID
from orchestrator.registry import load_stages
from orchestrator.secrets import reveal
from orchestrator.stage_config import build_config
from orchestrator.store import HASHED_AFTER_FAILURE, QUARANTINE_NOTE, Entry, Store

log = logging.getLogger("ragline")


@dataclass
class Task:
    step: str
    stage: str
    config: dict
    inputs: dict[str, dict | None]  # name -> {"ref": Ref json, "start", "stop"} or None
    key: str
    material: dict
    shard: list[int] = field(default_factory=lambda: [0, 1])
    gpus: list[int] = field(default_factory=list)
    log: str = ""
    force: bool = False
    imports: list[str] = field(default_factory=list)
    project: str = ""  # the recipe's project folder, where its own stage modules are looked up too
    cache_root: str = ""
    show_progress: bool = False
    secrets: dict[str, str] = field(default_factory=dict)  # config path -> "${oc.env:NAME}" text

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        i, n = self.shard
        return self.step if n == 1 else f"{self.step}[{i}/{n}]"

    @property
    def what(self) -> str:
        """What is computed, for lock-wait lines: ``retrieve shard 3/8``."""
        i, n = self.shard
        return self.step if n == 1 else f"{self.step} shard {i + 1}/{n}"


def _handles(spec, task: Task) -> dict:
    kwargs = {}
    for name, ispec in spec.inputs.items():
        given = task.inputs.get(name)
        if given is None:
            kwargs[name] = None
            continue
        ref = Ref(**given["ref"])
        if ispec.type.kind == "table":
            kwargs[name] = ispec.type(ref, given.get("start", 0), given.get("stop"))
        else:
            kwargs[name] = ispec.type(ref)
    return kwargs


def _empty_outputs(spec) -> dict | None:
    """Outputs for an empty shard, when every output is a table: empty tables, no stage call."""
    if any(t.kind != "table" for t in spec.outputs.values()):
        return None
    return {name: t.schema.empty_table() for name, t in spec.outputs.items()}


def run_task(task: Task, store: Store, wait_note=None,
             main_process: bool = True) -> tuple[Entry | None, bool]:
    """Compute ``task`` unless its key is already cached; returns (entry, was_cached).

    A non-main rank of a multi-process task (``main_process=False``) takes no lock and commits
    nothing: it waits until the main rank holds the key's lock, then computes beside it (same
    scratch directory) and returns (None, False); (None, True) when the main rank found the key
    cached. So the ranks of a second run never train into the scratch directory of a first.
    """
    spec = load_stages(task.imports, project=task.project)[task.stage]
    if not main_process:
        if _main_rank_says(store, task) == "cached":
            return None, True
        _compute(task, spec, store, commit=False)
        return None, False
    lock = store.lock(task.key, what=task.what)
    if wait_note is not None:
        try:
            lock.acquire(timeout=0)
        except Exception:  # noqa: BLE001 - filelock.Timeout: someone else computes this key
            wait_note(task)
            lock.acquire()
    else:
        lock.acquire()
    try:
        entry = None if task.force else store.lookup(task.key, task.step)
        _tell_other_ranks(store, task, "cached" if entry is not None else "compute")
        if entry is not None:
            return entry, True
        return _compute(task, spec, store), False
    finally:
        lock.release()


def _launch() -> str:
    """This multi-process launch (torchrun's run id and rendezvous port), with no ``.`` or
    ``-`` (a tmp name's separators)."""
    launch = f"rank0_{os.environ.get('TORCHELASTIC_RUN_ID', '')}_{os.environ.get('MASTER_PORT', '')}"
    return re.sub(r"[^A-Za-z0-9_]", "_", launch)


def _tell_other_ranks(store: Store, task: Task, what: str) -> None:
    """The main rank's word to the others: ``tmp/<key>.<pid>.<launch>-<place id>``, a tmp name
    (``leases.tmp_name``), so ``rag gc`` keeps it exactly while this rank lives. The other ranks,
    on any host, find it by key and launch."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        note = store.root / "tmp" / f"{task.key}.{os.getpid()}.{_launch()}-{PLACE_ID}"
        note.parent.mkdir(parents=True, exist_ok=True)
        tmp = note.with_name(f".{note.name}")
        tmp.write_text(what)
        os.replace(tmp, note)


def _main_rank_says(store: Store, task: Task) -> str:
    """Wait for the main rank to hold the key's lock: "compute" or "cached". (If the main rank
    dies first, the launcher stops this rank too.)"""
    while True:
        notes = list((store.root / "tmp").glob(f"{task.key}.*.{_launch()}-*"))
        if notes:
            return notes[0].read_text()
        time.sleep(0.2)


def _compute(task: Task, spec, store: Store, commit: bool = True) -> Entry | None:
    tmp = store.new_tmp(task.key)
    step_log = logging.getLogger(f"ragline.step.{task.step}")
    # the shards of a step share its scratch (see keys.scratch_key); an unsharded task has its own
    scratch = scratch_key(task.material) if task.material.get("shard") else task.key
    ctx = StageContext(task.step, task.shard[0], task.shard[1], tmp, store.scratch(scratch),
                       step_log, task.gpus, task.show_progress, is_main_process=commit,
                       answers=store.answers(), forced=bool(task.force))
    kwargs = _handles(spec, task)
    shard_input = kwargs.get(spec.shard_by) if spec.shard_by else None
    start = time.time()
    try:
        result = None
        if shard_input is not None and shard_input.num_rows == 0 and task.shard[1] > 1:
            result = _empty_outputs(spec)
            step_log.info("shard %s is empty: wrote empty outputs", task.label)
        if result is None:
            if spec.config_param:  # secrets travel as their ${oc.env:..} text, read here
                config = reveal(task.config, task.secrets)
                kwargs[spec.config_param] = build_config(spec.config_cls, config)
            if spec.ctx_param:
                kwargs[spec.ctx_param] = ctx
            _check_inputs_current(task, store, started=False)
            step_log.info("%s: stage %s v%d starts (key %s)", task.label, spec.name, spec.version,
                          task.key[:12])
            value = spec.fn(**kwargs)
            if commit:
                _check_inputs_intact(task, spec, store)
            result = _named_outputs(value, spec, task.step) if spec.multi_output else {"out": value}
        if not commit:  # a non-main rank: its outputs are the main rank's to write
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        refs = {}
        for name, cls in spec.outputs.items():
            try:
                refs[name] = write_artifact(result[name], cls, tmp / "outputs" / name,
                                            f"{task.step}.{name}", task.key)
            except StageOutputError as e:
                raise e.of_stage(spec.name, spec.module) from e
        duration = time.time() - start
        if task.log and Path(task.log).is_file():
            shutil.copyfile(task.log, tmp / "_log.txt")
        meta = {"key": task.key, "step": task.step, "stage": spec.name, "version": spec.version,
                "material": task.material, "shard": task.shard, "duration": duration,
                "created": time.time(), "outputs": {n: r.to_json() for n, r in refs.items()}}
        entry = store.commit(tmp, task.key, meta)
        step_log.info("%s: done in %.2fs", task.label, duration)
        return entry
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(e, RagError):   # it may have read an input as --force swapped it
            _check_inputs_current(task, store, started=True, failure=e)
        damage = None if isinstance(e, RagError) else _damaged_input(task, store, e)
        if damage:  # the stage failed on a damaged input: name the producer to recompute
            raise RagError(damage) from e
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _return_type(spec) -> str:
    """The name of a multi-output stage's NamedTuple class (``Two``)."""
    import typing

    try:
        return typing.get_type_hints(spec.fn)["return"].__name__
    except Exception:  # noqa: BLE001 - it resolved when the stage was registered; be safe
        return "its NamedTuple"


def _build_hint(spec) -> str:
    build = f"{_return_type(spec)}({', '.join(f'{n}=...' for n in spec.outputs)})"
    return (f"fix the stage's return value: build it by name, {build}, so no output can get "
            f"another's value (a dict with exactly the keys {', '.join(spec.outputs)} works too)")


def _named_outputs(value, spec, step: str) -> dict:
    """{output name: value} of what a multi-output stage returned.

    The declared NamedTuple (or any NamedTuple with those fields) is what a stage returns. A dict
    whose keys are exactly the output names is taken too: like the NamedTuple, it says by name
    which value is which output. A plain tuple or list is refused: its values would land in
    outputs by position only, and two outputs of the same type swapped would go unnoticed.
    """
    names = list(spec.outputs)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        fields = value._asdict()
        if set(names) <= set(fields):
            return fields
        got = f"{type(value).__name__} (fields {', '.join(fields) or '(none)'})"
    elif isinstance(value, dict):
        if set(value) == set(names):
            return dict(value)
        got = f"a dict with the keys {', '.join(map(str, value)) or '(none)'}"
    else:
        got = type(value).__name__ if value is not None else "None"
    ret = _return_type(spec)
    raise StageOutputError(
        f"step '{step}'", f"stage '{spec.name}' ({spec.module}) declares {ret} (outputs "
        f"{', '.join(names)}): return {ret}({', '.join(f'{n}=...' for n in names)}), got {got}",
        hint=_build_hint(spec))


def _check_inputs_intact(task: Task, spec, store: Store) -> None:
    """A stage that wrote into one of its (cached, read-only) inputs fails with its name; so
    does a step whose source file changed while it ran (its key holds the content planned, and
    the stage may have read either)."""
    _check_sources_unchanged(task, store)
    _check_inputs_current(task, store, started=True)
    for name, given in task.inputs.items():
        if given is None:
            continue
        ref = Ref(**given["ref"])
        if name == spec.shard_by:   # a shard checks the parts it read, not every shard's
            ref = ref.covering(given.get("start", 0), given.get("stop"))
        changed = store.check_intact(ref)
        found = _found_damaged(store, ref) if changed else None
        if found:   # another task that failed reading it found it damaged and set it aside
            raise RagError(_set_aside_line(task, name, ref, found, "so its result is not kept"))
        if changed:
            raise RagError(f"step '{task.step}' (stage '{spec.name}'): its input '{name}' "
                           f"changed while the step ran ({changed}): a stage must not modify "
                           "its inputs (copy them into ctx.new_dir() first), nor may anything "
                           "else change the cache during a run")


def _found_damaged(store: Store, ref: Ref) -> str | None:
    """Why an entry holding ``ref`` is gone, when a step that failed reading it found its
    content damaged (``Store.check_content``): another shard of a step whose shards share an
    input part, say. None for any other change (a stage that wrote into its input)."""
    import json

    for key in store.keys_of(ref):
        if store.entry_path(key).exists():
            continue
        notes = (store.root / "quarantine").glob(f"{key}.*/{QUARANTINE_NOTE}")
        for note in sorted(notes, reverse=True):
            try:
                reason = json.loads(note.read_text())["reason"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if HASHED_AFTER_FAILURE in reason:
                return reason
    return None


def _set_aside_line(task: Task, name: str, ref: Ref, found: str, then: str) -> str:
    return (f"step '{task.step}': its input '{name}' ({ref.producer}) was found damaged in the "
            f"cache while the step ran ({found}), {then}; rerun: step "
            f"'{ref.producer.split('.')[0]}' is computed again")


def _check_inputs_current(task: Task, store: Store, started: bool,
                          failure: Exception | None = None) -> None:
    """Refuse a step whose input another command computed again (``--force`` recommits a key in
    place): before the stage starts, so no work is spent on an output that would not be kept,
    again before its result is committed, and when the stage failed (reading a file as it was
    swapped fails with a bare FileNotFoundError): the failure is named, not blamed."""
    for name, given in task.inputs.items():
        replaced = _recommitted(Ref(**given["ref"]), store) if given is not None else None
        if not replaced:
            continue
        if failure is not None:
            when = (f"while the step ran, and the stage failed meanwhile "
                    f"({type(failure).__name__}: {str(failure)[:200]})")
        elif started:
            when = ("while the step ran, so its result is not kept (it may have read either "
                    "version)")
        else:
            when = "after this run planned the step, so it did not start"
        raise RagError(f"step '{task.step}': its input '{name}' ({replaced}'s output) was "
                       f"computed again by another command (--force) {when}; rerun to compute "
                       f"it from the output as it is now")


def _recommitted(ref: Ref, store: Store) -> str | None:
    """The producing step of an upstream output whose cache entries now hold another content
    than ``ref`` says (``--force`` recommits a key in place), else None."""
    step, _, output = ref.producer.partition(".")
    keys = store.keys_of(ref) if output else []
    hashes = []
    for key in keys:
        now = store.output_hash(key, output)
        if now is None:
            return None     # gone or damaged: check_intact says so
        hashes.append(now)
    if not hashes:
        return None
    now = hashes[0] if len(hashes) == 1 else hash_strings(hashes)
    return step if now != ref.content_hash else None


def _check_sources_unchanged(task: Task, store: Store) -> None:
    """Refuse to commit a result under a key whose source content is no longer the file's:
    each source input is hashed again (stat calls only, unless a file changed)."""
    from orchestrator.hashing import SourceMemo

    memo = None
    for name, given in task.inputs.items():
        ref = Ref(**given["ref"]) if given is not None else None
        if ref is None or not ref.producer.startswith("source ") or \
                ref.content_hash.startswith("missing:") or not ref.paths:
            continue
        memo = memo or SourceMemo(store.root / "sources.json")
        try:
            now = memo.hash(ref.paths[0])
        except OSError as e:
            now = f"unreadable ({e.strerror or e})"
        if now != ref.content_hash:
            raise RagError(f"step '{task.step}': its {ref.producer} ({ref.paths[0]}) changed "
                           f"after this run planned it, so the step's result is not kept (its "
                           f"key holds the content planned; the stage may have read the new "
                           f"one); rerun to compute it from the file as it is now",
                           hint="leave a source alone while a run reads it")


def _damaged_input(task: Task, store: Store, failure: Exception | None = None) -> str | None:
    """The message for the first input found damaged in the cache, or None. Its files' stats
    are checked (a few stat calls); when the stage failed as reading damaged bytes fails
    (``may_be_damage``: a corrupt Parquet page gives ``OSError: Unexpected end of stream``),
    the entries it read are hashed again too, since a change that kept every size and mtime
    passes the stat check, and a rerun would fail the same way forever. A damaged entry is
    moved to ``quarantine/``, so the rerun computes its step again."""
    line = _stat_damage(task, store)
    if line is not None or failure is None or not may_be_damage(failure):
        return line
    for name, given in task.inputs.items():
        if given is None:
            continue   # (a shard hashes the parts it read, not every shard's)
        ref = Ref(**given["ref"]).covering(given.get("start", 0), given.get("stop"))
        found = store.check_content(ref, task.step)
        if found is None:
            continue
        file, producer, moved = found
        fix = (f"it was moved to quarantine, so a rerun computes step '{producer}' again" if moved
               else f"fix: rerun with --force {producer}")
        return (f"step '{task.step}' input '{name}' is damaged in the cache: {file} differs from "
                f"what step '{producer}' committed (hashed again after the stage failed: "
                f"{_short(failure)}); {fix}")
    return _stat_damage(task, store)   # another shard moved the entry aside while this hashed


def _stat_damage(task: Task, store: Store) -> str | None:
    """The message for the first input whose files' stats changed (a few stat calls), or None."""
    for name, given in task.inputs.items():
        if given is None:
            continue
        ref = Ref(**given["ref"])
        changed = store.check_intact(ref)
        found = _found_damaged(store, ref) if changed else None
        if found:
            return _set_aside_line(task, name, ref, found, "and the stage failed meanwhile")
        if changed:
            return store.damage_message(task.step, name, ref, changed)
    return None


def may_be_damage(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is what reading damaged bytes
    raises: a decoder's plain OSError (no errno: pyarrow's ``Unexpected end of stream``,
    Pillow's truncated image) or EIO, EOFError, UnicodeDecodeError, a JSON, pickle or zlib
    error, or a pyarrow error that names a file format (``Parquet magic bytes not found``).
    Costs no re-hash: a stage's own bug (a KeyError, a plain ValueError, pyarrow's ``Could not
    convert``), a file it did not find, an OSError subclass (TimeoutError, ConnectionError, a
    requests error) and transformers' "Can't load ..." (a missing file, said as an OSError).

    >>> may_be_damage(OSError("Unexpected end of stream")), may_be_damage(KeyError("x"))
    (True, False)
    >>> may_be_damage(FileNotFoundError(errno.ENOENT, "No such file", "/data/model.bin"))
    False
    >>> may_be_damage(TimeoutError("the judge did not answer")), may_be_damage(OSError(
    ...     "Can't load tokenizer for 'm'. ... does not appear to have a file named x"))
    (False, False)
    """
    import json
    import pickle
    import sys
    import zlib

    kinds: tuple = (EOFError, UnicodeDecodeError, json.JSONDecodeError, pickle.UnpicklingError,
                    zlib.error)
    pa = sys.modules.get("pyarrow")
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and (exc.errno == errno.EIO or (
                exc.errno is None and type(exc) is OSError and not _NOT_FOUND.search(str(exc)))):
            return True
        if isinstance(exc, kinds) and not isinstance(exc, (MemoryError, NotImplementedError)):
            return True
        if pa is not None and isinstance(exc, pa.ArrowException) and _FORMAT.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


# an OSError that says a file is missing or unreachable (transformers' loaders), not damaged
_NOT_FOUND = re.compile(r"can't load|couldn't connect|does not appear to have|not a valid model "
                        r"identifier|is not a local folder|no such file|not found", re.I)
# a pyarrow error raised while decoding a file (not while converting a stage's own values)
_FORMAT = re.compile(r"parquet|thrift|magic bytes|footer|corrupt|malformed|decompress|base64|"
                     r"end of stream|flatbuffer|\bipc\b|deserializ|invalid data", re.I)


def _short(exc: BaseException) -> str:
    """``Type: first line`` of an exception, cut at 200 characters."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


def name_inputs(message: str, inputs: dict[str, dict | None]) -> str:
    """``message`` with each input's cache path followed by the step output (or source) it
    holds, so a path deep in the cache says where it came from.

    >>> ref = {"paths": ["/c/objects/ab/cd/data"], "producer": "encoder.out"}
    >>> name_inputs("/c/objects/ab/cd/data is BertModel", {"model": {"ref": ref}})
    '/c/objects/ab/cd/data (encoder.out) is BertModel'
    """
    for given in inputs.values():
        ref = (given or {}).get("ref") or {}
        producer = ref.get("producer") or ""
        if "." not in producer or producer.startswith("source "):   # a step's output only
            continue
        if f"step '{producer.split('.')[0]}'" in message:           # already named
            continue
        for path in ref.get("paths") or []:   # the path itself, not a file inside it
            if path:
                message = re.sub(re.escape(path) + r"(?![/\w.(])", lambda m: f"{m[0]} ({producer})",
                                 message, count=1)
    return message


def one_line(exc: BaseException, cache_root: str = "") -> str:
    """The message a user sees for a failed task (no traceback)."""
    if isinstance(exc, RagError):
        return exc.message
    full = disk_full(exc, cache_root)
    if full:
        return full
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
