"""DynamicRAG preference pairs from scored trajectories (SEEDS 1.3 step 11).

For each scored question (``Scored`` row: ``trajectories[i] = {ids, selection, response}`` and
``rewards[i]``), the best trajectory is the first argmax of the rewards and the worst the first
argmin. Questions with fewer than two trajectories or all-equal rewards carry no preference and
are skipped.

Routing (as in the paper): the first ``generator_cap`` qualifying questions give **generator**
pairs, the rest give **reranker** pairs, so the two sets are disjoint.

* Generator pair: prompt = :func:`generator_messages` over the passages the *best* trajectory
  selected; chosen = the first non-empty gold answer; rejected = the lowest-reward response whose
  normalized text differs from every normalized gold.
* Reranker pair: prompt = :func:`reranker_messages` over the first ``num_docs`` passages;
  chosen / rejected = the best / worst selection, ``"[1], [3]"`` or ``"None"``.

Rows follow ``Preferences``: ``prompt`` is a message list, ``chosen``/``rejected`` are one
assistant message each (TRL's conversational preference format).

Fixes relative to the seed code: the generator's rejected answer is taken from *this* question
(the seed reused a stale value from an earlier question, or crashed when every response equalled
the gold); such a question gives no generator pair, does not use up a generator slot, and gives a
reranker pair instead. Selected ids outside the prompt's passages are dropped.

A change of rule, not only a fix (fidelity review P4): the seed's rejected answer is the *first*
response in trajectory order whose raw text differs from ``answer[0]``, which can be a correct
answer ("Paris." against the gold "Paris"); here it is the *lowest-reward* response whose
normalized text matches no gold, so a correct answer is never the rejected one. Responses
"Paris." / "Lyon" / "Paris" with rewards 0.9 / 0.1 / 0.8 and gold "Paris": the seed rejects
"Paris.", this code rejects "Lyon".

The role prompts P1/P2 are system messages in the pairs, as in SFT and inference; the original's
LLaMA-Factory DPO files put them in the user turn (fidelity review P5), a train/test mismatch
this removes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from stages.dynamicrag.prompts import RolePrompts, format_selection, reranker_messages
from stages.lib.chat import assistant
from stages.lib.metrics.answer import as_gold_list, normalize_answer
from stages.lib.prompts import generator_messages


class PairSplit(NamedTuple):
    generator: list[dict]
    reranker: list[dict]
    skipped: dict[str, int]    # reason -> number of questions


def best_and_worst(rewards: list[float]) -> tuple[int, int] | None:
    """Indices of the first maximum and the first minimum reward; None without a preference.

    >>> best_and_worst([0.2, 0.9, 0.1, 0.9, 0.1])
    (1, 2)
    >>> best_and_worst([0.5, 0.5]), best_and_worst([0.7])
    (None, None)
    """
    if len(rewards) < 2 or max(rewards) == min(rewards):
        return None
    return rewards.index(max(rewards)), rewards.index(min(rewards))


def _valid_ids(ids, num_docs: int) -> list[int]:
    return [int(i) for i in (ids or []) if 1 <= int(i) <= num_docs]


def generator_pair(row: dict, best: int, prompts: RolePrompts, num_docs: int = 40) -> dict | None:
    """Generator preference: gold answer over the worst response that is not a gold answer.

    >>> row = {"id": "q1", "dataset": "nq", "question": "capital of France?",
    ...        "answers": ["Paris"], "ctxs": [{"title": "France", "text": "Paris is ..."}],
    ...        "trajectories": [{"ids": [1], "response": "Paris."},
    ...                         {"ids": [], "response": "Lyon"}], "rewards": [0.9, 0.1]}
    >>> from stages.dynamicrag.prompts import shipped_prompts
    >>> pair = generator_pair(row, best=0, prompts=shipped_prompts())
    >>> pair["chosen"], pair["rejected"]
    ([{'role': 'assistant', 'content': 'Paris'}], [{'role': 'assistant', 'content': 'Lyon'}])
    >>> pair["prompt"][1]["content"].endswith("1. Topic: France\\nContent: Paris is ...")
    True
    """
    golds = [g.strip() for g in as_gold_list(row.get("answers")) if g.strip()]
    if not golds:
        return None
    gold_forms = {normalize_answer(g) for g in golds}
    trajectories = row["trajectories"]
    rewards = row["rewards"]
    by_reward = sorted(range(len(trajectories)), key=lambda i: (rewards[i], i))
    responses = [t["response"] or "" for t in trajectories]
    rejected = next((responses[i] for i in by_reward
                     if normalize_answer(responses[i]) not in gold_forms), None)
    if rejected is None:
        return None
    docs = list(row.get("ctxs") or [])[:num_docs]
    ids = _valid_ids(trajectories[best]["ids"], len(docs))
    selected = [docs[i - 1] for i in ids]
    return {"id": row["id"], "task": "generator",
            "prompt": generator_messages(prompts.generator, row["question"], selected,
                                         row.get("dataset") or "", row.get("choices") or []),
            "chosen": [assistant(golds[0])], "rejected": [assistant(rejected)]}


def reranker_pair(row: dict, best: int, worst: int, prompts: RolePrompts,
                  num_docs: int = 40) -> dict | None:
    """Reranker preference: the best trajectory's selection over the worst one's.

    >>> row = {"id": "q1", "question": "q?", "ctxs": [{"title": "A", "text": "a"}] * 3,
    ...        "trajectories": [{"ids": [2]}, {"ids": [1, 3]}]}
    >>> from stages.dynamicrag.prompts import shipped_prompts
    >>> p = reranker_pair(row, best=0, worst=1, prompts=shipped_prompts())
    >>> p["chosen"][0]["content"], p["rejected"][0]["content"]
    ('[2]', '[1], [3]')
    """
    docs = list(row.get("ctxs") or [])[:num_docs]
    chosen = format_selection(_valid_ids(row["trajectories"][best]["ids"], len(docs)))
    rejected = format_selection(_valid_ids(row["trajectories"][worst]["ids"], len(docs)))
    if chosen == rejected:
        return None
    return {"id": row["id"], "task": "reranker",
            "prompt": reranker_messages(prompts.reranker, row["question"], docs),
            "chosen": [assistant(chosen)], "rejected": [assistant(rejected)]}


def preference_pairs(rows: Iterable[dict], prompts: RolePrompts, generator_cap: int = 10000,
                     num_docs: int = 40, reranker_cap: int | None = None) -> PairSplit:
    """Generator and reranker pairs for scored questions, routed in input order.

    ``generator_cap = 0`` makes only reranker pairs; ``reranker_cap`` (None = no limit) bounds
    the reranker set. ``skipped`` counts questions by reason: ``fewer_than_2_trajectories``,
    ``equal_rewards``, ``same_selection``, ``reranker_cap`` gave no pair; ``no_generator_pair``
    (no gold, or every response is a gold answer) fell through to the reranker route.

    >>> traj = [{"ids": [1], "response": "Paris"}, {"ids": [], "response": "Lyon"}]
    >>> rows = [{"id": f"q{i}", "question": "q?", "answers": ["Paris"], "ctxs": [{"title": "T",
    ...          "text": "x"}], "trajectories": traj, "rewards": r}
    ...         for i, r in enumerate([[0.9, 0.1], [0.3, 0.3], [0.8, 0.2]])]
    >>> from stages.dynamicrag.prompts import shipped_prompts
    >>> split = preference_pairs(rows, shipped_prompts(), generator_cap=1)
    >>> [p["id"] for p in split.generator], [p["id"] for p in split.reranker], split.skipped
    (['q0'], ['q2'], {'equal_rewards': 1})
    """
    generator: list[dict] = []
    reranker: list[dict] = []
    skipped: Counter[str] = Counter()
    for row in rows:
        trajectories = row.get("trajectories") or []
        rewards = [float(r) for r in (row.get("rewards") or [])]
        if len(trajectories) < 2 or len(rewards) != len(trajectories):
            skipped["fewer_than_2_trajectories"] += 1
            continue
        picked = best_and_worst(rewards)
        if picked is None:
            skipped["equal_rewards"] += 1
            continue
        best, worst = picked
        if len(generator) < generator_cap:
            pair = generator_pair(row, best, prompts, num_docs)
            if pair is not None:
                generator.append(pair)
                continue
            skipped["no_generator_pair"] += 1   # falls through to a reranker pair
        if reranker_cap is not None and len(reranker) >= reranker_cap:
            skipped["reranker_cap"] += 1
            continue
        pair = reranker_pair(row, best, worst, prompts, num_docs)
        if pair is None:
            skipped["same_selection"] += 1
            continue
        reranker.append(pair)
    return PairSplit(generator, reranker, dict(skipped))
