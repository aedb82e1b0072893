"""Validate a step's config against its stage's config dataclass, before anything runs.

pydantic's ``TypeAdapter`` over the stage's own stdlib dataclass does the checking, in strict
JSON mode (``"8"`` is not an integer, ``1`` is a fine float, a YAML list is a fine tuple), so a
config class can say everything it means with ordinary annotations::

    @dataclass
    class DpoConfig:
        loss_type: Literal["sigmoid", "ipo", "hinge"] = "sigmoid"    # did-you-mean on a typo
        epochs: Annotated[int, Field(ge=1)] = 1                      # ranges
        judge: JudgeConfig | None = None                             # nested sections
        weights: dict[str, float] = field(default_factory=dict)

        def __post_init__(self):                   # cross-field rules run at plan time too
            if self.judge is None and self.weights.get("judge"):
                raise ConfigError("weights.judge needs a judge section")

        def plan_notes(self, resources: dict) -> list[str]:   # optional: shown by `rag plan`
            return [f"{resources['gpus']} GPU(s) per shard"]

``resources`` holds the step's ``gpus`` (per shard), ``shards``, ``executor`` (the recipe's
executor settings) and ``inputs`` (the names of the inputs the step wires, sorted: a rule
between config and inputs, like "a reader endpoint or a wired model, not both", is checked
here). A ``ConfigError`` raised by ``plan_notes`` refuses the plan at the step.

A config or any section nested in it may also say which environment variables the step reads
(an API key): ``needed_env(self) -> {key: "NAME"}``. The plan checks them for the steps a run
computes, each time (they are not part of the config): see :func:`needed_env`.

Every failure is one ``ConfigError`` line, ``steps.<step>.<key path>: expected …, got …``, with
``key`` set so the DAG builder can prefix the recipe's file:line. Results are remembered per
(config class, canonical JSON of the values): a 1,000-member sweep validates each distinct step
config once.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from typing import Any

from orchestrator.errors import ConfigError, did_you_mean

MISSING = "???"  # omegaconf.MISSING, without importing omegaconf here
RESERVED = ("stage", "inputs", "shards", "gpus")


class _Invalid(Exception):
    """A problem at ``path`` (relative to the step's config), before the step name is known."""

    def __init__(self, path: str, text: str, hint: str | None = None, named: str | None = None):
        super().__init__(text)
        self.path, self.text, self.hint = path, text, hint
        self.named = named  # the one field a message about the whole config names, if any


def type_name(tp) -> str:
    """``int``, ``list[str] | None``, ``one of ['a', 'b']``: a type as a user reads it."""
    if typing.get_origin(tp) is typing.Annotated:
        return type_name(typing.get_args(tp)[0])
    if typing.get_origin(tp) is typing.Literal:
        return f"one of {list(typing.get_args(tp))}"
    if typing.get_origin(tp) is None and isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


@functools.lru_cache(maxsize=None)
def _adapter(config_cls: type):
    from pydantic import TypeAdapter  # ~0.1 s; paid only when a DAG is built, never on a no-op rerun

    try:
        return TypeAdapter(config_cls)
    except Exception as e:  # noqa: BLE001 - pydantic cannot check some field's type
        raise _Invalid("", f"config class {config_cls.__qualname__} cannot be checked: "
                           f"{str(e).splitlines()[0]}",
                       hint="use plain types, Literal, Annotated, dataclasses, list, dict") from None


@functools.lru_cache(maxsize=None)
def _hints(config_cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(config_cls, include_extras=True)
    except Exception as e:  # noqa: BLE001 - a NameError, usually
        raise _Invalid("", f"config class {config_cls.__qualname__} has an annotation that cannot be "
                           f"resolved ({e})", hint="import the type at module level") from None


def _nested_class(tp) -> type | None:
    """The dataclass a value of type ``tp`` is a section of (``J``, ``J | None``), else None."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None


def _check_keys(config_cls: type, values: dict, prefix: str, reserved: tuple = ()) -> None:
    """Unknown keys (with did-you-mean) and ``???`` values, in this section and nested ones."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for key in values:
        if key not in fields:
            step_keys = f"; every step also takes: {', '.join(reserved)}" if reserved else ""
            raise _Invalid(f"{prefix}{key}", f"unknown key{did_you_mean(key, list(fields) + list(reserved))}",
                           hint=f"{config_cls.__name__} has: {', '.join(fields)}{step_keys}")
    for name, f in fields.items():
        value = values[name] if name in values else _default(f)
        if isinstance(value, str) and value == MISSING:
            raise _Invalid(f"{prefix}{name}", f"missing value ({type_name(_hints(config_cls)[name])} required)",
                           hint="set it in the recipe or on the command line: {where}=...")
        section = _nested_class(_hints(config_cls)[name])
        if section is not None and dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {s.name: getattr(value, s.name) for s in dataclasses.fields(value)}
        if section is not None and isinstance(value, dict):
            _check_keys(section, value, f"{prefix}{name}.")


def _check_finite(value: Any, path: str) -> None:
    """No ``inf`` or ``nan`` anywhere in a config (pydantic passes ``inf`` through ``Gt(0)``):
    no setting of ours means "unbounded" by infinity.

    >>> try:
    ...     _check_finite({"a": [1.0, {"b": float("inf")}]}, "")
    ... except _Invalid as e:
    ...     print(e.path, "|", e.text)
    a[1].b | expected a finite number, got inf
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(path, f"expected a finite number, got {value}",
                       "set a number, or null where the setting allows none")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}[{i}]")


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def with_section_defaults(config_cls: type, values: dict, defaults: dict | None = None) -> dict:
    """``values`` with every nested section given as a partial mapping completed from the
    section's default: the enclosing default instance's section (``default_factory``), at any
    depth; a section whose default is None starts from its class's own field defaults. With
    ``judge: Judge = field(default_factory=lambda: Judge(llm=Llm(model="judge-7b")))``, the
    recipe's ``judge: {llm: {backend: openai}}`` keeps ``model: judge-7b``, not ``Llm``'s own
    default model (tests/orchestrator/test_stage_config.py).
    """
    out = dict(values)
    for f in dataclasses.fields(config_cls):
        given = values.get(f.name)
        section = _nested_class(_hints(config_cls)[f.name])
        if section is None or not isinstance(given, dict):
            continue
        if defaults is not None and f.name in defaults:
            base = defaults[f.name]  # the enclosing default instance's section, as a dict
        else:
            base = _default(f)
            base = _as_dict(base) if dataclasses.is_dataclass(base) and not isinstance(base, type) else None
        base = base if isinstance(base, dict) else None
        out[f.name] = {**(base or {}), **with_section_defaults(section, given, base)}
    return out


def _as_dict(obj) -> dict:
    """A dataclass instance as plain JSON data (tuples become lists, as in a recipe)."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


_EXPECTED = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
             "string_type": "a string", "list_type": "a list", "tuple_type": "a list",
             "dict_type": "a mapping", "dataclass_type": "a mapping"}
_BOUNDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
           "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}


def _describe(err: dict) -> str:
    """pydantic's error as ``expected …, got …`` (``msg`` for anything unforeseen)."""
    kind, got, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "value_error":
        return err["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        choices = re.findall(r"'((?:[^'\\]|\\.)*)'", ctx.get("expected", ""))
        return f"expected one of {choices}, got {got!r}{did_you_mean(str(got), choices)}"
    if kind in _BOUNDS:
        op, name = _BOUNDS[kind]
        return f"expected a value {op} {ctx.get(name)}, got {got!r}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got!r}"
    return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {got!r}"


def _path(loc: tuple) -> str:
    """A pydantic error location as a key path (a mapping's bad key is named by the key itself).

    >>> _path(("ctxs", 0, "id")), _path(("fields", "qestion", "[key]"))
    ('ctxs[0].id', 'fields.qestion')
    """
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc
                   if p != "[key]").lstrip(".")


def _field_names(config_cls: type, seen: set | None = None) -> set[str]:
    seen = set() if seen is None else seen
    for name, tp in _hints(config_cls).items():
        seen.add(name)
        for arg in [tp, *typing.get_args(tp)]:
            section = _nested_class(arg)
            if section is not None and section is not config_cls:
                _field_names(section, seen)
    return seen


def _about(config_cls: type, text: str, hint: str | None = None) -> _Invalid:
    """A problem with the whole config (its ``__post_init__`` refused it), blamed on the one
    field its message names, if it names one (``epochs must be > 0``: ``epochs``).

    >>> @dataclasses.dataclass
    ... class Cfg:
    ...     lr: float = 1.0
    ...     max_steps: int = -1
    ...     epochs: int = 1
    >>> [_about(Cfg, t).named for t in ("epochs must be > 0", "epochs and max_steps are 0", "no")]
    ['epochs', None, None]
    """
    named = [f.name for f in dataclasses.fields(config_cls)
             if re.search(rf"(?<![\w.]){re.escape(f.name)}(?!\w)", text)]
    return _Invalid("", text, hint, named[0] if len(named) == 1 else None)


def _first_problem(config_cls: type, errors: list[dict], values: dict) -> _Invalid:
    """One line for a pydantic ValidationError. When every branch of a union failed (its locs
    carry branch tags, not field names), report the field with its declared type instead."""
    first = errors[0]
    loc = first["loc"]
    if not loc:   # a ValueError of the class's own __post_init__
        return _about(config_cls, _describe(first))
    names = _field_names(config_cls)
    same_field = [e for e in errors if e["loc"][:1] == loc[:1]]
    clean = all(isinstance(p, int) or p in names for e in same_field for p in e["loc"])
    if len(same_field) == 1 or clean:
        return _Invalid(_path(loc), _describe(first))
    declared = _hints(config_cls).get(loc[0])
    return _Invalid(str(loc[0]), f"expected {type_name(declared)}, got {values.get(loc[0])!r}")


@functools.lru_cache(maxsize=None)
def _validated(config_cls: type, canonical: str, reserved: tuple = RESERVED) -> tuple[dict, Any]:
    """(plain config dict with defaults, the config object) for canonical JSON of the values."""
    from pydantic import ValidationError

    given = json.loads(canonical)
    values = with_section_defaults(config_cls, given)
    _check_keys(config_cls, values, "", reserved)
    _check_finite(values, "")
    if values != given:  # a nested section given in part: the rest from its default
        from orchestrator.hashing import canonical_json

        canonical = canonical_json(values)
    try:
        obj = _adapter(config_cls).validate_json(canonical, strict=True)
    except ValidationError as e:
        raise _first_problem(config_cls, e.errors(include_url=False), values) from None
    except ConfigError as e:  # raised by the class's own __post_init__
        raise _about(config_cls, e.message, e.hint) from None
    except (TypeError, ValueError) as e:  # a __post_init__ that raises outside pydantic's reach
        raise _about(config_cls, str(e)) from None
    return _adapter(config_cls).dump_python(obj, mode="json"), obj


def check_step_config(config_cls: type | None, values: dict, where: str,
                      canonical: str | None = None, reserved: tuple = RESERVED) -> tuple[dict, Any]:
    """(all config fields of a step with defaults filled in, the config object); every value
    checked and the dataclass built, so its ``__post_init__`` ran. Raises ``ConfigError``.

    ``where`` is the key path used in messages, e.g. ``steps.retrieve``; ``canonical`` is
    ``canonical_json(values)`` if the caller already has it; ``reserved``, the keys every step
    takes besides its config (none for a section that is not a step's, such as ``ragline``).

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Cfg:
    ...     k: int = 5
    >>> check_step_config(Cfg, {"k": 3}, "steps.retrieve")[0]
    {'k': 3}
    >>> check_step_config(Cfg, {"k": "3"}, "steps.retrieve")
    Traceback (most recent call last):
    orchestrator.errors.ConfigError: steps.retrieve.k: expected an integer, got '3'
    """
    if config_cls is None:
        if values:
            first = next(iter(values))
            raise ConfigError(f"{where}.{first}: unknown key; this stage takes no config "
                              f"(reserved keys: {', '.join(RESERVED)})", key=f"{where}.{first}")
        return {}, None
    if canonical is None:
        from orchestrator.hashing import canonical_json

        canonical = canonical_json(values)
    try:
        return _validated(config_cls, canonical, reserved)
    except _Invalid as e:
        key = f"{where}.{e.path}" if e.path else where
        hint = e.hint.replace("{where}", key) if e.hint else None
        # a message about the whole config that names one field is located at that field
        raise ConfigError(f"{key}: {e.text}", hint=hint,
                          key=f"{where}.{e.named}" if e.named else key) from None


@functools.lru_cache(maxsize=None)
def nonsemantic_paths(config_cls: type | None, semantic_key: str = "ragline_semantic") -> tuple[tuple[str, ...], ...]:
    """Key paths of the fields marked ``nonsemantic(...)``, nested sections included
    (``("judge", "max_concurrency")``): they never enter a cache key."""
    if config_cls is None:
        return ()
    out: list[tuple[str, ...]] = []
    for f in dataclasses.fields(config_cls):
        if f.metadata.get(semantic_key) is False:
            out.append((f.name,))
            continue
        section = _nested_class(_hints(config_cls)[f.name])
        if section is not None and section is not config_cls:
            out += [(f.name, *p) for p in nonsemantic_paths(section, semantic_key)]
    return tuple(out)


def neutral_paths(config_cls: type | None, config: dict,
                  neutral_key: str = "ragline_neutral") -> list[tuple[str, ...]]:
    """Key paths of the fields declared ``added(default)`` that hold that default in
    ``config`` (a checked config dict), nested sections included: they stay out of the key.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Cfg:
    ...     k: int = 5
    ...     rescale: bool = field(default=False, metadata={"ragline_neutral": False})
    >>> neutral_paths(Cfg, {"k": 5, "rescale": False}), neutral_paths(Cfg, {"k": 5, "rescale": True})
    ([('rescale',)], [])
    """
    if config_cls is None:
        return []
    out: list[tuple[str, ...]] = []
    for f in dataclasses.fields(config_cls):
        value = config.get(f.name)
        if neutral_key in f.metadata:
            if value == json.loads(json.dumps(f.metadata[neutral_key])):  # tuples as lists
                out.append((f.name,))
            continue
        section = _nested_class(_hints(config_cls)[f.name])
        if section is not None and section is not config_cls and isinstance(value, dict):
            out += [(f.name, *p) for p in neutral_paths(section, value, neutral_key)]
    return out


def build_config(config_cls: type, config: dict) -> Any:
    """The config object a stage receives, from a checked config dict (nested sections become
    their dataclasses). For executors: ``spec.config_cls(**config)`` would leave them dicts."""
    from orchestrator.hashing import canonical_json

    return _adapter(config_cls).validate_json(canonical_json(config), strict=True)


def plan_notes(obj: Any, resources: dict, where: str) -> list[str]:
    """The config's own ``plan_notes(resources)`` (see the module docstring), or []; a
    ``ConfigError`` from it refuses the plan and is located at the step."""
    hook = getattr(obj, "plan_notes", None)
    if hook is None:
        return []
    try:
        return [str(n) for n in hook(resources) or []]
    except ConfigError as e:
        raise ConfigError(f"{where}: {e.message}", hint=e.hint, key=where) from None


def needed_env(obj: Any, where: str) -> dict[str, str]:
    """``{key path: NAME}`` of the environment variables a step's config says it reads.

    A config (or section) with a ``needed_env()`` method answers for itself and everything in
    it, so a config whose switch leaves a section unused (``teacher: reference``) returns
    nothing for it; one without the method is searched through its sections (and lists of them).

    >>> @dataclasses.dataclass
    ... class Judge:
    ...     key_env: str = "K"
    ...     def needed_env(self): return {"key_env": self.key_env}
    >>> @dataclasses.dataclass
    ... class Cfg:
    ...     judge: Judge = dataclasses.field(default_factory=Judge)
    ...     others: list = dataclasses.field(default_factory=lambda: [Judge("A")])
    >>> needed_env(Cfg(), "steps.reward")
    {'steps.reward.judge.key_env': 'K', 'steps.reward.others[0].key_env': 'A'}
    >>> @dataclasses.dataclass
    ... class Switched(Cfg):
    ...     use_judge: bool = False
    ...     def needed_env(self): return {"judge.key_env": "K"} if self.use_judge else {}
    >>> needed_env(Switched(), "steps.reward")
    {}
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return {}
    hook = getattr(obj, "needed_env", None)
    if hook is not None:
        return {f"{where}.{k}": v for k, v in hook().items()}
    out: dict[str, str] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        items = enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]
        for i, item in items:
            out.update(needed_env(item, f"{where}.{f.name}" + ("" if i is None else f"[{i}]")))
    return out
