"""Preference-pair selection and routing (SEEDS 1.3 step 11, with its fixes)."""

import doctest

from stages.dynamicrag import pairs_logic as pairs
from stages.dynamicrag.pairs_logic import (best_and_worst, generator_pair, preference_pairs,
                                           reranker_pair)
from stages.dynamicrag.prompts import reranker_messages, shipped_prompts
from stages.lib.prompts import generator_messages

PROMPTS = shipped_prompts()
CTXS = [{"id": f"d{i}", "title": f"T{i}", "text": f"text {i}"} for i in range(1, 5)]


def scored(qid, responses, ids, rewards, answers=("Paris",), dataset="nq"):
    return {"id": qid, "dataset": dataset, "question": f"question {qid}", "answers": list(answers),
            "ctxs": CTXS,
            "trajectories": [{"ids": i, "selection": "", "response": r}
                             for r, i in zip(responses, ids)],
            "rewards": rewards}


def test_doctests():
    assert doctest.testmod(pairs).failed == 0


def test_best_and_worst_ties_take_first_index():
    assert best_and_worst([0.1, 0.5, 0.5, 0.1]) == (1, 0)
    assert best_and_worst([0.3, 0.3, 0.3]) is None
    assert best_and_worst([]) is None


def test_generator_pair_uses_chosen_selection_and_worst_non_gold_response():
    row = scored("q", ["Paris", "the paris!", "Lyon", "Nice"], [[3, 1], [2], [4], []],
                 [0.9, 0.05, 0.2, 0.1])
    pair = generator_pair(row, 0, PROMPTS)
    assert pair["id"] == "q" and pair["task"] == "generator"
    assert pair["prompt"] == generator_messages(PROMPTS.generator, "question q", [CTXS[2], CTXS[0]], "nq")
    assert pair["chosen"] == [{"role": "assistant", "content": "Paris"}]
    # lowest reward is "the paris!" (normalizes to the gold) -> skipped; next lowest is "Nice"
    assert pair["rejected"] == [{"role": "assistant", "content": "Nice"}]


def test_generator_pair_shows_a_questions_options_as_inference_does():
    row = {**scored("q", ["A", "B"], [[1], [2]], [0.9, 0.1], answers=("A",), dataset="arc"),
           "choices": ["iron", "wood"]}
    prompt = generator_pair(row, 0, PROMPTS)["prompt"]
    assert prompt == generator_messages(PROMPTS.generator, "question q", [CTXS[0]], "arc",
                                        ["iron", "wood"])
    assert "question q\nA: iron\nB: wood" in prompt[-1]["content"]


def test_generator_pair_none_when_every_response_is_a_gold():
    row = scored("q", ["Paris", "paris."], [[1], [2]], [0.9, 0.1])
    assert generator_pair(row, 0, PROMPTS) is None
    row = scored("q", ["Paris", "Capital"], [[1], [2]], [0.9, 0.1], answers=("Paris", "capital"))
    assert generator_pair(row, 0, PROMPTS) is None
    assert generator_pair(scored("q", ["a", "b"], [[1], [2]], [1, 0], answers=("", " ")), 0, PROMPTS) is None


def test_generator_pair_chosen_is_first_non_empty_gold():
    row = scored("q", ["Paris", "Lyon"], [[1], [2]], [0.9, 0.1], answers=(" ", "Paris "))
    assert generator_pair(row, 0, PROMPTS)["chosen"][0]["content"] == "Paris"


def test_reranker_pair_all_docs_and_selections():
    row = scored("q", ["Paris", "Lyon"], [[2, 1], []], [0.9, 0.1])
    pair = reranker_pair(row, 0, 1, PROMPTS)
    assert pair["task"] == "reranker"
    assert pair["prompt"] == reranker_messages(PROMPTS.reranker, "question q", CTXS)
    assert pair["chosen"][0]["content"] == "[2], [1]"
    assert pair["rejected"][0]["content"] == "None"
    # num_docs limits the prompt and drops ids beyond it
    pair = reranker_pair(scored("q", ["a", "b"], [[2], [1, 4]], [1, 0]), 0, 1, PROMPTS, num_docs=3)
    assert pair["prompt"] == reranker_messages(PROMPTS.reranker, "question q", CTXS[:3])
    assert pair["rejected"][0]["content"] == "[1]"
    # identical selections after dropping: no preference
    assert reranker_pair(scored("q", ["a", "b"], [[1], [1, 4]], [1, 0]), 0, 1, PROMPTS, num_docs=1) is None


def test_routing_and_skips():
    rows = [
        scored("g1", ["Paris", "Lyon"], [[1], [2]], [0.9, 0.1]),
        scored("eq", ["Paris", "Lyon"], [[1], [2]], [0.5, 0.5]),            # equal rewards
        scored("one", ["Paris"], [[1]], [0.9]),                             # one trajectory
        scored("allgold", ["Paris", "paris"], [[1], [2]], [0.9, 0.1]),      # falls through
        scored("g2", ["Paris", "Nice"], [[1], [3]], [0.8, 0.2]),
        scored("r1", ["Paris", "Lyon"], [[1], [2]], [0.7, 0.3]),
        scored("same", ["Paris", "Lyon"], [[1], [1]], [0.7, 0.3]),          # same selection
    ]
    split = preference_pairs(rows, PROMPTS, generator_cap=2)
    assert [p["id"] for p in split.generator] == ["g1", "g2"]
    assert [p["id"] for p in split.reranker] == ["allgold", "r1"]
    assert split.skipped == {"equal_rewards": 1, "fewer_than_2_trajectories": 1,
                             "no_generator_pair": 1, "same_selection": 1}
    only_reranker = preference_pairs(rows, PROMPTS, generator_cap=0, reranker_cap=1)
    assert only_reranker.generator == [] and [p["id"] for p in only_reranker.reranker] == ["g1"]


def test_rows_match_preferences_schema_shape():
    split = preference_pairs([scored("g1", ["Paris", "Lyon"], [[1], [2]], [0.9, 0.1])],
                             PROMPTS, generator_cap=0)
    row = split.reranker[0]
    assert set(row) == {"id", "task", "prompt", "chosen", "rejected"}
    for key in ("prompt", "chosen", "rejected"):
        assert all(set(m) == {"role", "content"} for m in row[key])
