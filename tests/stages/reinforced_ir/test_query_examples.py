"""Few-shot examples in query synthesis (synthesize's ``examples`` input). The original's
generate_universal_query.py asks every passage with ``get_query_generation_prompt(...,
use_examples=True)``: the prompt shows three example passages with the query written for each
(the same three for a dataset), after the constraints and before the output instruction.
Before, synthesize had no examples; the paper recipe now wires ours (scientific claims) with the
query prompt that shows them. Without examples every request is as before, word for word, and
the demo's synthesize step is keyed as before."""

from __future__ import annotations

import random

import pytest

from orchestrator.api import ConfigError
from stages.reinforced_ir.schemas import QueryExamples
from stages.reinforced_ir.synthesis import (Examples, constraints, load_examples,
                                            render_examples)
from stages.reinforced_ir.synthesize import SynthesizeConfig
from tests.conftest import REPO
from tests.stages.conftest import PASSAGES
from tests.stages.reinforced_ir.synthesize_helpers import PROMPTS, sent_prompts

EXAMPLES = PROMPTS / "query_examples.yaml"


def test_every_query_request_shows_the_examples_before_the_output_instruction(
        model_env, monkeypatch):
    cfg = SynthesizeConfig(n_passages=6, query_type="claim", passage_type="document",
                           stance="random")
    shots = load_examples(EXAMPLES)
    assert len(shots.items) == 3                     # the original shows three
    block = render_examples(shots, "claim", "document")
    with_shots = sent_prompts(model_env, monkeypatch, cfg, PROMPTS / "query_fewshot.yaml", EXAMPLES)
    without = sent_prompts(model_env, monkeypatch, cfg, PROMPTS / "query.yaml")
    assert len(with_shots) == len(without) == 6
    for asked, plain in zip(with_shots, without):
        assert asked.count(block) == 1
        before, after = asked.split(block)
        assert "- Style: " in before and after.strip().startswith("Reply with the claim only")
        for passage, query in shots.items:
            assert passage in block and f"The claim: {query}" in block
        # the same passage, length, style and stance are asked with and without examples: the
        # examples add no draw, and the prompt is query.yaml's with the block inserted
        assert (before.rstrip() + "\n" + after.strip()) == plain


def test_without_examples_the_requests_are_those_from_before(model_env, monkeypatch):
    """query.yaml is unchanged and the examples block is not in it: the demo's requests (and
    their cached answers) are word for word those of before."""
    from tests.stages.reinforced_ir.test_claims import QUESTION_PROMPT

    asked = sent_prompts(model_env, monkeypatch, SynthesizeConfig(n_passages=5), PROMPTS / "query.yaml")
    rng = random.Random(0)
    picked = rng.sample(PASSAGES, 5)
    assert asked == [QUESTION_PROMPT.format(passage=f"{p['title']}\n{p['text']}",
                                            **constraints(rng)) for p in picked]


def test_examples_and_a_prompt_without_room_for_them_are_refused_before_any_request(
        model_env, monkeypatch):
    cfg = SynthesizeConfig(n_passages=3)
    with pytest.raises(ConfigError) as err:
        sent_prompts(model_env, monkeypatch, cfg, PROMPTS / "query.yaml", EXAMPLES)
    assert err.value.message == (f"prompt file {PROMPTS / 'query.yaml'}: 'user' does not use "
                                 f"{{examples}}, so the few-shot examples of {EXAMPLES} would "
                                 f"never be shown")
    assert "query_fewshot.yaml" in err.value.hint
    with pytest.raises(ConfigError) as err:
        sent_prompts(model_env, monkeypatch, cfg, PROMPTS / "query_fewshot.yaml")
    assert err.value.message == (f"prompt file {PROMPTS / 'query_fewshot.yaml'}: 'user' uses "
                                 f"{{examples}}, but synthesize has no examples input")
    assert "steps.synthesize.inputs.examples" in err.value.hint


def test_the_examples_file_is_rendered_as_written(tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text("examples:\n  - {passage: 'A set {x} of braces', query: 'What is {x}?'}\n")
    shots = load_examples(own)
    assert shots == Examples((("A set {x} of braces", "What is {x}?"),), path=str(own))
    assert render_examples(shots, "question", "passage") == (
        "Examples:\nExample 1\nPassage:\n```\nA set {x} of braces\n```\nThe question: What is {x}?")
    own.write_text("header: ''\nexample: '{i}) {passage} -> {query} ({passage_type})'\n"
                   "examples: [{passage: p1, query: q1}, {passage: p2, query: q2}]\n")
    assert render_examples(load_examples(own), "claim", "document") == (
        "1) p1 -> q1 (document)\n\n2) p2 -> q2 (document)")


@pytest.mark.parametrize("text, message", [
    ("examples: [\n", "not valid YAML"),
    ("examples: []\n", "needs 'examples', a non-empty list of {passage, query}"),
    ("header: x\n", "needs 'examples', a non-empty list of {passage, query}"),
    ("examples: [{passage: p, query: q}]\nexemple: x\n", "unknown key 'exemple'"),
    ("examples: [{passage: p, query: q}, {passage: p}]\n",
     "example 2: expected exactly 'passage' and 'query', each a non-empty string"),
    ("examples: [{passage: p, query: ''}]\n",
     "example 1: expected exactly 'passage' and 'query', each a non-empty string"),
    ("example: '{passage} {answer}'\nexamples: [{passage: p, query: q}]\n",
     "'example' uses {answer}, which this stage does not fill"),
    ("example: 'Passage: {passage}'\nexamples: [{passage: p, query: q}]\n",
     "'example' does not use {query}, so the LLM never sees the examples' queries"),
    ("example: 'Passage: {passage'\nexamples: [{passage: p, query: q}]\n",
     "'example' is not a valid template"),
])
def test_a_bad_examples_file_is_refused_naming_it(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        QueryExamples.check_source(bad)             # what `rag plan` calls before any step runs
    assert err.value.message.startswith(f"examples file {bad}") and message in err.value.message


def test_the_paper_recipe_shows_the_examples_and_the_demo_is_keyed_as_before():
    from orchestrator.dag import build_dag
    from orchestrator.recipe import compose

    def synth(recipe):
        member = compose(REPO / "conf" / recipe, [])[0]
        dag = build_dag(REPO / "conf" / recipe, member.values, member.secrets)
        return member.values, dag.steps["synthesize"]

    values, paper = synth("reinforced_ir_llama3.yaml")
    assert paper.inputs["examples"].node == "query_examples"
    assert values["sources"]["query_examples"].endswith("query_examples.yaml")
    assert values["sources"]["query_prompt"].endswith("query_fewshot.yaml")
    values, demo = synth("reinforced_ir_demo.yaml")
    assert "examples" not in demo.inputs                    # no input: not in the cache key
    assert values["sources"]["query_prompt"].endswith("/query.yaml")


def test_rag_plan_refuses_a_bad_examples_file_of_the_paper_recipe(tmp_path, monkeypatch, capsys):
    import json

    from tests.conftest import rag

    bad = tmp_path / "mine.yaml"
    bad.write_text("examples:\n  - {passage: p}\n")
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "runs" / "cache"))
    capsys.readouterr()
    assert rag("plan", "conf/reinforced_ir_llama3.yaml", f"prompts.query_examples={bad}",
               "--json", runs=tmp_path / "runs") == 0
    (member,) = json.loads(capsys.readouterr().out)["members"]
    assert [p for p in member["problems"] if "examples file" in p] == [
        f"steps.synthesize.inputs.examples (source 'query_examples'): examples file {bad}: "
        f"example 1: expected exactly 'passage' and 'query', each a non-empty string"]
