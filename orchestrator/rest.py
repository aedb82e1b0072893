"""The command that goes on from where a run stopped, without recomputing what it finished.

``rag run R --from load --until load`` recomputes ``load``; the command that runs the rest must
still recompute what ``--from load`` forces downstream, but not ``load`` again. So the rest is
the same command less ``--from``/``--force``, plus ``--from`` for the first unfinished steps of
what ``--from`` forced and ``--force`` for each unfinished step ``--force`` named.

A forced step that stopped part way (a shard failed, or the run was interrupted) stays in that
command, and its record keeps the keys the run recomputed and committed (``recomputed``). The
next run in the same folder, when it is that command or the stopped run's own, goes on from
there (``earlier_try``): it keeps those shards and recomputes the rest of the step, as a plain
resume does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from orchestrator.rundir import effective_state


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


def recomputed(status: dict, command: str) -> dict[str, list[str]]:
    """Step -> keys that the run of ``status`` recomputed (``--force``/``--from``) and committed
    before it failed or was interrupted, when ``command`` resumes it: its resume command, or
    its own command again; {} otherwise.

    >>> status = {"state": "failed", "command": "rag run r.yaml --from a", "steps": {
    ...     "a": {"state": "done"}, "b": {"state": "failed", "recomputed": ["k0"]}},
    ...     "resume": "rag run r.yaml --from b"}
    >>> recomputed(status, "rag run r.yaml --from b")
    {'b': ['k0']}
    >>> recomputed(status, "rag run r.yaml --from a")
    {'b': ['k0']}
    >>> recomputed(status, "rag run r.yaml --force b"), recomputed({**status, "state": "ok"},
    ...                                                            "rag run r.yaml --from b")
    ({}, {})
    """
    if (effective_state(status) not in ("failed", "interrupted")
            or command not in (status.get("resume"), status.get("command"))):
        return {}
    return {name: list(step["recomputed"]) for name, step in status.get("steps", {}).items()
            if step.get("recomputed")}


def earlier_try(run: Path, command: str) -> tuple[str, dict[str, list[str]]]:
    """(name, ``recomputed``) of the run that the run at ``run`` goes on from: the newest run
    before it in the same folder, when that run failed or was interrupted and ``command``
    resumes it. ("", {}) when there is none: after a run of any other command, or a finished
    one, a ``--force`` recomputes every shard again."""
    try:
        names = [p.name for p in run.parent.iterdir()
                 if p.name < run.name and not p.name.endswith("-sweep")]
    except OSError:
        return "", {}
    for name in sorted(names, reverse=True):
        try:
            status = json.loads((run.parent / name / "status.json").read_text())
        except (OSError, ValueError):
            continue
        return name, recomputed(status, command)
    return "", {}
