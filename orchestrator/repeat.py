"""Repeated sub-DAGs: a recipe's ``repeat:`` blocks unrolled into ordinary steps.

Reinforced-IR alternates rounds (generate with the LLM, train the retriever, then the LLM on the
new retriever, …). A ``repeat`` block writes one round once::

    repeat:
      rounds:
        times: 3
        first: {retriever: base_retriever}     # what `retriever@prev` means in round 1
        steps:
          augment: {stage: augment, inputs: {retriever: retriever@prev, queries: load}}
          retriever: {stage: train_retriever, inputs: {data: augment}}

and it becomes the steps ``augment_1, retriever_1, augment_2, retriever_2, …``: inside a round a
bare name is the same round's step, ``NAME@prev`` the previous round's (``first`` in round 1),
anything else a step or source outside the block. Steps after the block use ``NAME@last``.
The string ``{round}`` in a template value becomes the round number. Each unrolled step is
cached on its own, so raising ``times`` from 3 to 4 computes round 4 only.
"""

from __future__ import annotations

from orchestrator.errors import ConfigError


def _ref(ref, round_no: int, local: set[str], first: dict, where: str):
    if not isinstance(ref, str):
        return ref
    node, dot, output = ref.partition(".")
    if node.endswith("@prev"):
        name = node[: -len("@prev")]
        if name not in local:
            raise ConfigError(f"{where}: '{ref}': '{name}' is not a step of this repeat block", key=where)
        if round_no == 1:
            if name not in first:
                raise ConfigError(f"{where}: '{ref}' has no value in round 1; add "
                                  f"first: {{{name}: STEP_OR_SOURCE}} to the repeat block", key=where)
            return first[name]
        return f"{name}_{round_no - 1}{dot}{output}"
    if node in local:
        return f"{node}_{round_no}{dot}{output}"
    return ref


def _fill(value, round_no: int):
    if isinstance(value, str):
        return value.replace("{round}", str(round_no))
    if isinstance(value, dict):
        return {k: _fill(v, round_no) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, round_no) for v in value]
    return value


def expand_repeats(cfg: dict) -> dict:
    """``cfg`` with every ``repeat`` block unrolled into ``steps`` (a new dict; cfg untouched).

    >>> cfg = {"steps": {"seed": {"stage": "s"}, "out": {"stage": "o", "inputs": {"x": "b@last"}}},
    ...        "repeat": {"r": {"times": 2, "first": {"b": "seed"},
    ...                         "steps": {"b": {"stage": "t", "inputs": {"x": "b@prev"}}}}}}
    >>> steps = expand_repeats(cfg)["steps"]
    >>> list(steps), steps["b_1"]["inputs"], steps["b_2"]["inputs"], steps["out"]["inputs"]
    (['seed', 'out', 'b_1', 'b_2'], {'x': 'seed'}, {'x': 'b_1'}, {'x': 'b_2'})
    """
    blocks = cfg.get("repeat") or {}
    if not blocks:
        return cfg
    steps = dict(cfg.get("steps") or {})
    last: dict[str, str] = {}
    unrolled: dict[str, dict] = {}
    for block, body in blocks.items():
        where = f"repeat.{block}"
        if not isinstance(body, dict) or not isinstance(body.get("steps"), dict):
            raise ConfigError(f"{where}: expected a mapping with 'times' and 'steps'", key=where)
        times = body.get("times")
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise ConfigError(f"{where}.times: expected an integer >= 1, got {times!r}", key=f"{where}.times")
        local = set(body["steps"])
        first = body.get("first") or {}
        for round_no in range(1, times + 1):
            for name, template in body["steps"].items():
                step = _fill(dict(template), round_no)
                inputs = step.get("inputs") or {}
                step["inputs"] = {k: _ref(v, round_no, local, first, f"{where}.steps.{name}.inputs.{k}")
                                  for k, v in inputs.items()}
                unrolled[f"{name}_{round_no}"] = step
        last.update({name: f"{name}_{times}" for name in local})
    clash = set(unrolled) & set(steps)
    if clash:
        raise ConfigError(f"repeat: unrolled step '{sorted(clash)[0]}' clashes with a step of the "
                          "same name; rename one", key=f"steps.{sorted(clash)[0]}")

    def after(ref, where: str):
        if isinstance(ref, str) and "@last" in ref.partition(".")[0]:
            node, dot, output = ref.partition(".")
            name = node[: -len("@last")]
            if name not in last:
                raise ConfigError(f"{where}: '{ref}': no repeat block has a step '{name}'", key=where)
            return f"{last[name]}{dot}{output}"
        return ref

    out_steps = {}
    for name, step in steps.items():  # execution order comes from the wiring, not this order
        if isinstance(step, dict) and step.get("inputs"):
            step = {**step, "inputs": {k: after(v, f"steps.{name}.inputs.{k}")
                                     for k, v in step["inputs"].items()}}
        out_steps[name] = step
    out_steps.update(unrolled)
    return {**cfg, "steps": out_steps}
