"""Claim synthesis (synthesize's ``stance``), as the original's ``get_query_generation_prompt``
does for its claim datasets: each passage is asked, at random, for a claim it supports or one it
refutes, with claim lengths ("10 to 15 words" ×5, "at least 15 words" ×2) instead of the
question lengths. Before, the paper recipe asked SciFact's passages for "a claim that this
document answers" with question lengths. Questions (``stance: none``) are asked as before, word
for word, so their requests and cached answers are unchanged."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from orchestrator.api import ConfigError
from stages.reinforced_ir.schemas import QualityPrompt, QueryPrompt
from stages.reinforced_ir.synthesis import CLAIM_LENGTHS, LENGTHS, STYLES, constraints, weighted
from stages.reinforced_ir.synthesize import SynthesizeConfig, synthesize
from stages.schemas import Passages
from tests.conftest import REPO, plan_checker
from tests.stages.conftest import PASSAGES, fake_endpoint
from tests.stages.reinforced_ir.synthesize_helpers import PROMPTS, file_input, sent_prompts

# the shipped query prompt as a question dataset saw it before stances existed
QUESTION_PROMPT = """Task: Given a question, retrieve passages that answer the question.

Passage:
```
{passage}
```

Write one question that this passage answers.
Rules:
- Refer to things by name; do not use words such as "this", "that", "it", "there" or "here".
- Length: {length}.
- Style: {style}.
Reply with the question only, as plain text, without any explanation."""


def test_claim_draws_follow_the_original_order_and_weights():
    """Per passage: the length (claim weights), the style, then supports/refutes at even odds;
    ``none`` makes exactly the two draws it made before (the same questions for a seed)."""
    rng, replay = random.Random(7), random.Random(7)
    for _ in range(50):
        got = constraints(rng, "random")
        assert got == {"length": weighted(CLAIM_LENGTHS, replay),
                       "style": weighted(STYLES, replay),
                       "relation": replay.choice(("supports", "refutes"))}
    rng, replay = random.Random(7), random.Random(7)
    for _ in range(50):
        assert constraints(rng) == {"length": weighted(LENGTHS, replay),
                                    "style": weighted(STYLES, replay), "relation": "answers"}
    draws = [constraints(rng, "random") for _ in range(7000)]
    lengths, relations = (Counter(d[k] for d in draws) for k in ("length", "relation"))
    assert set(lengths) == set(CLAIM_LENGTHS)
    assert lengths["10 to 15 words"] / 7000 == pytest.approx(5 / 7, abs=0.02)
    assert relations["supports"] / 7000 == pytest.approx(0.5, abs=0.02)
    assert {constraints(rng, "refutes")["relation"] for _ in range(20)} == {"refutes"}
    with pytest.raises(ValueError, match="stance: 'maybe' is not one of none, supports"):
        constraints(rng, "maybe")


def test_claim_prompts_ask_supported_or_refuted_and_question_prompts_are_unchanged(
        model_env, monkeypatch):
    claims = sent_prompts(model_env, monkeypatch, SynthesizeConfig(
        n_passages=12, query_type="claim", passage_type="document", stance="random"))
    said = Counter("document supports." in c or "document refutes." in c for c in claims)
    assert said == {True: 12}, claims[0]
    assert {"supports", "refutes"} <= {w.rstrip(".") for c in claims for w in c.split()}
    assert all("Length: 10 to 15 words." in c or "Length: at least 15 words." in c
               for c in claims)
    assert all("Write one claim that this document" in c for c in claims)

    questions = sent_prompts(model_env, monkeypatch, SynthesizeConfig(n_passages=12))
    rng = random.Random(0)                    # synthesize's draws, replayed
    picked = rng.sample(PASSAGES, 12)
    expected = []
    for p in picked:
        c = constraints(rng)
        passage = (p.get("title") + "\n" if p.get("title") else "") + p["text"]
        expected.append(QUESTION_PROMPT.format(passage=passage, **c))
    assert questions == expected


def test_a_query_prompt_without_relation_serves_questions_and_refuses_a_stance(
        model_env, monkeypatch, tmp_path):
    """A user's query prompt written before ``{relation}`` existed still works for questions;
    asking it for a stance is refused in one line naming the file and the placeholder."""
    old = tmp_path / "my_query.yaml"
    old.write_text("user: |-\n  {task}\n  {passage}\n  One {query_type} this {passage_type} "
                   "answers, {length}, {style}.\n")
    asked = sent_prompts(model_env, monkeypatch, SynthesizeConfig(n_passages=3), old)
    assert len(asked) == 3 and all("answers" in a for a in asked)
    with pytest.raises(ConfigError) as err:
        sent_prompts(model_env, monkeypatch, SynthesizeConfig(n_passages=3, stance="random"), old)
    assert err.value.message == (f"prompt file {old}: 'user' does not use {{relation}}, so "
                                 f"stance: random cannot say whether the passage supports or "
                                 f"refutes the question")
    assert "{relation}" in err.value.hint and "stance: none" in err.value.hint


def test_quality_control_of_a_claim_asks_supports_or_refutes(model_env, monkeypatch, tmp_path):
    """The original's check judges whether the passage "can support or refute" a claim; ours
    asked whether it "answers" it. Questions are checked as before, word for word."""
    art, ctx = model_env
    checks = []

    def answer(conversation, params):
        if params["max_tokens"] == 4:
            checks.append(conversation[-1]["content"])
            return "1"
        return "Entity 3 was born in a city."

    fake_endpoint(monkeypatch, answer)
    for stance in ("random", "none"):
        synthesize(art(Passages, PASSAGES), file_input(QueryPrompt, PROMPTS / "query.yaml"),
                   file_input(QualityPrompt, PROMPTS / "quality.yaml"),
                   SynthesizeConfig(n_passages=4, stance=stance), ctx(f"synthesize_{stance}"))
    assert len(checks) == 8   # each of the 4 passages checked once per stance
    claim_checks, question_checks = checks[:4], checks[4:]
    assert all("Decide whether the passage supports or refutes the query well enough" in c
               for c in claim_checks), claim_checks[0]
    assert all("Decide whether the passage answers the query well enough" in c
               for c in question_checks), question_checks[0]

    old = tmp_path / "my_quality.yaml"       # a user's check written before {relation}
    old.write_text("user: |-\n  {task} {query} {passage}: does it answer? 1 or 0\n")
    with pytest.raises(ConfigError, match=r"my_quality.yaml: 'user' does not use \{relation\}"):
        synthesize(art(Passages, PASSAGES), file_input(QueryPrompt, PROMPTS / "query.yaml"),
                   file_input(QualityPrompt, old), SynthesizeConfig(n_passages=4, stance="random"),
                   ctx("synthesize_old"))


def test_an_unknown_stance_is_refused_naming_the_key(tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError) as err:
        SynthesizeConfig(stance="claims")
    assert err.value.message == "stance: 'claims' is not one of none, supports, refutes, random"
    assert "random for claim datasets" in err.value.hint
    plan = plan_checker(str(REPO / "conf" / "reinforced_ir_demo.yaml"), tmp_path, monkeypatch,
                        capsys)
    code, out = plan("steps.synthesize.stance=claims")
    assert code == 2 and "steps.synthesize.stance: expected one of ['none', 'supports', " \
                         "'refutes', 'random'], got 'claims'" in out
    assert plan("steps.synthesize.stance=refutes")[0] == 0


def test_the_paper_recipe_asks_claims_with_a_stance_and_samples_with_the_penalty():
    from orchestrator.recipe import compose
    from orchestrator.repeat import expand_repeats

    def steps(recipe):
        return expand_repeats(compose(REPO / "conf" / recipe, [])[0].config)["steps"]

    paper, demo = steps("reinforced_ir_llama3.yaml"), steps("reinforced_ir_demo.yaml")
    assert (paper["synthesize"]["query_type"], paper["synthesize"]["passage_type"],
            paper["synthesize"]["stance"]) == ("scientific claim", "document", "random")
    # every augmentation: sampled, greedy, for evaluation (the original's generator default)
    augments = [n for n in paper if n.startswith("augment")]
    assert len(augments) == 7     # eval_base + 3 per round
    assert all(paper[n]["repetition_penalty"] == 1.1 for n in augments)
    # the demo keeps the defaults
    assert "stance" not in demo["synthesize"]
    assert not any("repetition_penalty" in s for s in demo.values())
