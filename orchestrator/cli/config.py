"""``rag config``: the composed recipe as a run would use it (Hydra's ``--cfg job --resolve``),
one section of it, or one step's stage config with every field and the stage's defaults marked.

Values read from the environment (``${oc.env:NAME}``) are shown as that text, never as their
value, as in a run's ``config.yaml``.
"""

from __future__ import annotations

EXAMPLES = """examples:
  rag config conf/dynamicrag_demo.yaml                    # the composed recipe, interpolations resolved
  rag config conf/dynamicrag_llama3.yaml --key retrieval  # one section (any dotted path)
  rag config conf/dynamicrag_llama3.yaml --step dpo       # every field of a step; defaults marked
  rag config conf/dynamicrag_demo.yaml steps.dpo.beta=0.2 --key steps.dpo   # after an override
  rag config conf/dynamicrag_demo.yaml --format json | jq .steps.sft

exit codes: 0 ok, 2 a recipe error, or no such key or step."""


def add_arguments(p) -> None:
    from orchestrator.cli.common import add_recipe_arguments

    add_recipe_arguments(p, "config")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--key", default=None,
                       help="a dotted path in the composed recipe (retrieval, steps.sft.lr)")
    which.add_argument("--step", default=None,
                       help="a step: its stage, inputs, shards, GPUs and every config field, "
                            "with the stage's defaults marked")
    p.add_argument("--format", choices=["yaml", "json"], default="yaml",
                   help="yaml (default) or json")


def select(config, key: str, recipe: str):
    """The value at the dotted ``key`` of ``config``; a key that is not there is a one-line
    error with the closest name at the level where the path stops.

    >>> select({"steps": {"dpo": {"beta": 0.1}}}, "steps.dpo.beta", "r.yaml")
    0.1
    >>> select({"a": [{"b": 1}]}, "a.0.b", "r.yaml")
    1
    """
    from orchestrator.errors import ConfigError, did_you_mean

    node, walked = config, []
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            at = ".".join(walked) or "the top level"
            names = [str(k) for k in node] if isinstance(node, dict) else []
            has = f"{at} has: {', '.join(names)}" if names else f"{at} is {_kind(node)}"
            where = f": no '{part}' under {at}" if walked else ""
            raise ConfigError(f"{recipe}: no key '{key}'{where}{did_you_mean(part, names)}; {has}",
                              hint="rag config RECIPE shows the whole composed recipe")
        walked.append(part)
    return node


def _kind(value) -> str:
    return f"a list of {len(value)}" if isinstance(value, list) else f"the value {value!r}"


def step_view(dag, member, name: str) -> tuple[dict, list[str]]:
    """(``{stage, inputs, shards, gpus, config}`` of step ``name``, the config fields the recipe
    does not set, which take the stage's default)."""
    from orchestrator.errors import ConfigError, did_you_mean
    from orchestrator.repeat import expand_repeats
    from orchestrator.secrets import redact

    if name not in dag.steps:
        raise ConfigError(f"{dag.recipe.name}: no step '{name}'{did_you_mean(name, dag.steps)}; "
                          f"steps: {', '.join(dag.steps)}")
    step = dag.steps[name]
    # what the recipe wrote for it: a round of a repeat block (generator_2) has its template's
    written = (expand_repeats(member.config).get("steps") or {}).get(name) or {}
    view = {"stage": f"{step.stage.name} v{step.stage.version}",
            "inputs": {k: str(w) for k, w in step.inputs.items()},
            "shards": step.shards, "gpus": step.gpus,
            "config": redact(step.config, step.secrets)}
    return view, [k for k in step.config if k not in written]


def _yaml(value) -> str:
    r"""``value`` as YAML, written as a run's ``config.yaml`` is; a single value as itself (no
    ``...`` document end).

    >>> _yaml({"k": [1, 2]}), _yaml(0.1), _yaml("conf/x.yaml"), _yaml(None)
    ('k:\n- 1\n- 2\n', '0.1\n', 'conf/x.yaml\n', 'null\n')
    """
    import json

    from orchestrator.rundir import config_yaml

    if not isinstance(value, (dict, list)):
        return (value if isinstance(value, str) else json.dumps(value)) + "\n"
    return config_yaml(value)


def step_yaml(view: dict, defaults: list[str]) -> str:
    """The step's view as YAML, each field at the stage's default marked with a comment.

    >>> print(step_yaml({"stage": "dpo v1", "inputs": {"pairs": "pairs"}, "shards": 1, "gpus": 0,
    ...                  "config": {"beta": 0.1, "lr": 5e-6}}, ["lr"]), end="")
    stage: dpo v1
    inputs:
      pairs: pairs
    shards: 1
    gpus: 0
    config:
      beta: 0.1
      lr: 5.0e-06  # the stage's default
    """
    head = _yaml({k: v for k, v in view.items() if k != "config"})
    lines = []
    for field, value in view["config"].items():
        text = _yaml({field: value}).rstrip("\n").split("\n")
        if field in defaults:
            text[0] += "  # the stage's default"
        lines += ["  " + line for line in text]
    return head + "config:" + (" {}" if not lines else "") + "\n" + "".join(
        line + "\n" for line in lines)


def main(args) -> int:
    import json
    import sys

    from orchestrator.cli.common import load, shipped_note
    from orchestrator.logs import console, escape

    recipe, members, dags = load(args)
    note = shipped_note(args)
    if note:   # on stderr: stdout is the config, for a file or jq
        console().print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    shown = []
    for member, dag in zip(members, dags):
        if args.step is not None:   # (view, the fields at the stage's default)
            shown.append(step_view(dag, member, args.step))
        else:
            shown.append((member.config if args.key is None
                          else select(member.config, args.key, recipe.name), None))
    if args.format == "json":   # one document: a sweep is a list of {overrides, config}
        docs = [value if defaults is None else {**value, "defaults": defaults}
                for value, defaults in shown]
        whole = docs[0] if len(docs) == 1 else [
            {"overrides": m.overrides, "config": d} for m, d in zip(members, docs)]
        sys.stdout.write(json.dumps(whole, indent=1) + "\n")
        return 0
    for n, (member, (value, defaults)) in enumerate(zip(members, shown)):
        if len(members) > 1:   # a blank line between members, a comment line naming each
            blank = "\n" if n else ""
            sys.stdout.write(f"{blank}# member {n} of {len(members)}: "
                             f"{' '.join(member.overrides)}\n")
        sys.stdout.write(_yaml(value) if defaults is None else step_yaml(value, defaults))
    return 0
