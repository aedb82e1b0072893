"""``rag_instruct.eval_inputs``: evaluation questions as the seed's eval_sglang.py asks them
(PubMedQA's own abstract, ConvFinQA's context and conversation, multiple choice's options), and
the options carried through infer_topk to rag_instruct.evaluate."""

from __future__ import annotations

import doctest
from pathlib import Path

from orchestrator.artifacts import Ref
from stages.common.infer_topk import InferTopkConfig, infer_topk
from stages.lib.endpoint import EndpointConfig
from stages.rag_instruct import eval_inputs as eval_inputs_module
from stages.rag_instruct.eval_inputs import EvalInputsConfig, eval_inputs
from stages.rag_instruct.evaluate import RagInstructEvaluateConfig, evaluate
from stages.schemas import GeneratorPrompt, Predictions, Retrieved
from tests.stages.conftest import fake_endpoint

EVAL_PROMPT = Path(__file__).resolve().parents[3] / "conf/prompts/rag_instruct/eval.yaml"
RETRIEVED = [{"id": "r1", "title": "T", "text": "a retrieved passage", "score": 1.0}]


def q(qid, dataset, question, answers, **extra):
    return {"id": qid, "dataset": dataset, "question": question, "answers": answers, "gold": [],
            "ctxs": list(RETRIEVED), **extra}


ROWS = [
    q("pm1", "pubmedqa", "Does aspirin lower fever?", ["yes"],
      context="Aspirin lowered fever in 40 of 50 patients."),
    q("cf1", "ConvFinQA", "And in 2009?", ["12"], instruction="Answer from the report.",
      context="year | revenue\n2008 | 10\n2009 | 12", previous_question=["In 2008? 10"]),
    q("ob1", "openbookqa", "Which gas do plants take in?", ["B"],
      choices=["oxygen", "carbon dioxide", "helium"]),
    q("md1", "medqa", "Which drug?", ["A"]),                       # no options: unchanged
    q("pq1", "popqa", "Who wrote Velmora?", ["Ann"]),
]


def test_doctests():
    assert doctest.testmod(eval_inputs_module).failed == 0


def test_each_set_gets_its_inputs_and_the_columns_stay(model_env):
    art, ctx = model_env
    out = art(Retrieved, eval_inputs(art(Retrieved, ROWS), EvalInputsConfig(), ctx("eval_inputs")))
    rows = {r["id"]: r for r in out.rows()}
    assert rows["pm1"]["ctxs"] == [{"id": None, "title": "",
                                    "text": "Aspirin lowered fever in 40 of 50 patients.",
                                    "score": None}]
    assert rows["pm1"]["question"] == "Does aspirin lower fever?"
    assert rows["cf1"]["question"] == (
        "Answer from the report.\n\n### Context:\nyear | revenue\n2008 | 10\n2009 | 12\n\n"
        "### Previous Questions and Answers:\nIn 2008? 10\n\n### Question:\nAnd in 2009?")
    assert rows["cf1"]["ctxs"] == RETRIEVED                      # ConvFinQA keeps its passages
    assert rows["ob1"]["question"] == ("Which gas do plants take in?\nA: oxygen\n"
                                       "B: carbon dioxide\nC: helium")
    assert rows["ob1"]["choices"] == ["oxygen", "carbon dioxide", "helium"]
    assert rows["md1"] == {**ROWS[3], "choices": None, "context": None, "instruction": None,
                           "previous_question": None}
    assert rows["pq1"]["question"] == "Who wrote Velmora?" and rows["pq1"]["ctxs"] == RETRIEVED


def test_the_model_sees_the_inputs_and_evaluate_reads_the_options(model_env, monkeypatch):
    """eval_inputs -> infer_topk (an endpoint reader) -> evaluate: the prompts carry the
    abstract as [1], the options as lines; an answer naming an option's text (no letter) is
    scored from the row's choices."""
    seen = {}

    def reply(conv, params):
        text = conv[-1]["content"]
        key = next(r["id"] for r in ROWS if r["question"].split("\n")[0] in text)
        seen[key] = text
        return "They take in carbon dioxide." if key == "ob1" else "yes"

    fake_endpoint(monkeypatch, reply)
    art, ctx = model_env
    inputs = art(Retrieved, eval_inputs(art(Retrieved, ROWS), EvalInputsConfig(), ctx("inputs")))
    prompt = GeneratorPrompt(Ref("file", GeneratorPrompt.type_name(), "hash", [str(EVAL_PROMPT)]))
    cfg = InferTopkConfig(k=10, reader=EndpointConfig(model="gpt-4o-mini"))
    predictions = art(Predictions, infer_topk(inputs, prompt, cfg, ctx("infer")))

    assert "[1] Aspirin lowered fever in 40 of 50 patients." in seen["pm1"]
    assert "a retrieved passage" not in seen["pm1"]
    assert "\nA: oxygen\nB: carbon dioxide\nC: helium" in seen["ob1"]
    assert seen["ob1"].count("A: oxygen") == 1   # infer_topk lists options the row lists already
    assert "### Previous Questions and Answers:\nIn 2008? 10" in seen["cf1"]
    rows = {r["id"]: r for r in predictions.rows()}
    assert rows["ob1"]["choices"] == ["oxygen", "carbon dioxide", "helium"]

    # the options reach evaluate as choices, also when the question does not list them
    bare = [{**r, "question": "Which gas do plants take in?"} if r["id"] == "ob1" else r
            for r in predictions.rows()]
    metrics, per_q = evaluate(art(Predictions, bare), RagInstructEvaluateConfig(),
                              ctx("evaluate"))
    ob1 = next(r for r in per_q if r["id"] == "ob1")
    assert (ob1["rule"], ob1["choice"], ob1["accuracy"]) == ("choice", "B", 1.0)


def test_obqa_and_rows_with_letter_golds_get_their_options_and_a_letter_style():
    """Before: a set named ``obqa`` (OpenBookQA's short name, the loader's and Self-RAG's) got
    neither its options nor the prompt's option style, although its gold is a letter."""
    from stages.lib.prompts import answer_style, load_prompt
    from stages.rag_instruct.eval_inputs import eval_input

    cfg, choices = EvalInputsConfig(), ["wood", "iron"]
    for dataset in ("obqa", "obqa_test", "my_quiz"):
        row, rule = eval_input(q("x", dataset, "Which is a metal?", ["B"], choices=choices), cfg)
        assert (rule, row["question"]) == ("options", "Which is a metal?\nA: wood\nB: iron")
        assert row["choices"] == choices
    # options but a text gold, and a letter gold without options: not multiple choice
    row = q("n", "nq", "Which is a metal?", ["iron"], choices=choices)
    assert eval_input(row, cfg) == (row, None)
    assert eval_input(q("m", "my_quiz", "Which?", ["A"]), cfg)[1] is None
    prompt = load_prompt(EVAL_PROMPT)
    letter = answer_style(prompt, "openbookqa")
    assert "letter" in letter and answer_style(prompt, "obqa") == letter


def test_casehold_gets_its_options_as_evaluate_scores_it_by_letter():
    """Before: ``rag_instruct.evaluate`` scored CaseHOLD as multiple choice but ``eval_inputs``
    did not list it, so a CaseHOLD question whose gold is a holding's text reached the model
    without its options (the seed gives CaseHOLD its A-E options)."""
    from stages.rag_instruct.eval_inputs import eval_input
    from stages.rag_instruct.evaluate import RagInstructEvaluateConfig
    from stages.rag_instruct.scorer import CHOICE, scorer_for

    holdings = ["holding that a", "holding that b"]
    row, rule = eval_input(q("c", "casehold", "Which holding?", ["holding that b"],
                             choices=holdings), EvalInputsConfig())
    assert (rule, row["question"]) == ("options", "Which holding?\nA: holding that a\n"
                                                  "B: holding that b")
    assert scorer_for("casehold", RagInstructEvaluateConfig()) == CHOICE
    assert EvalInputsConfig().choice_sets == RagInstructEvaluateConfig().choice_sets
