"""The command that goes on from where a run stopped, without recomputing what it finished.

``rag run R --from load --until load`` recomputes ``load``; the command that runs the rest must
still recompute what ``--from load`` forces downstream, but not ``load`` again. So the rest is
the same command less ``--from``/``--force``, plus ``--from`` for the first unfinished steps of
what ``--from`` forced and ``--force`` for each unfinished step ``--force`` named.
"""

from __future__ import annotations

import re


def still_forced(dag, force: set[str], from_: set[str], done: set[str]) -> tuple[list, list]:
    """(``--from`` steps, ``--force`` steps) that recompute what a run forced and did not finish.

    >>> from types import SimpleNamespace as N
    >>> class Dag:  # load -> sft -> dpo, and eval reads load
    ...     steps = {"load": N(inputs={}), "sft": N(inputs={"x": N(node="load")}),
    ...              "dpo": N(inputs={"x": N(node="sft")}), "eval": N(inputs={"x": N(node="load")})}
    ...     def downstream(self, names):
    ...         out = set(names)
    ...         for name, step in self.steps.items():
    ...             if any(w.node in out for w in step.inputs.values()):
    ...                 out.add(name)
    ...         return out
    >>> still_forced(Dag(), set(), {"load"}, {"load"})
    (['eval', 'sft'], [])
    >>> still_forced(Dag(), {"dpo", "load"}, set(), {"load"})
    ([], ['dpo'])
    """
    forced = dag.downstream(set(from_)) - done
    roots = sorted(n for n in forced
                   if not any(w.node in forced for w in dag.steps[n].inputs.values()))
    single = sorted(set(force) - done - forced)
    return roots, single


def rest_command(command: str, roots: list[str], single: list[str], until: bool) -> str:
    """``command`` less its ``--from``/``--force`` (and ``--until`` when ``until``), plus
    ``--from`` each of ``roots`` and ``--force`` each of ``single``.

    >>> rest_command("rag run r.yaml --from load --until=load x=1", ["sft"], [], True)
    'rag run r.yaml x=1 --from sft'
    >>> rest_command("rag run r.yaml --force a --until b", [], [], False)
    'rag run r.yaml --until b'
    """
    flags = "from|force|until" if until else "from|force"
    rest = re.sub(rf" --(?:{flags})(?:=| +)\S+", "", command)
    return " ".join([rest, *(f"--from {n}" for n in roots), *(f"--force {n}" for n in single)])
