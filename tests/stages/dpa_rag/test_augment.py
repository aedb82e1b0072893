"""``dpa_rag.augment`` through a fake endpoint: ids, kinds, copied golds, the prompts asked,
empty replies dropped, and the error for a kind whose prompt is not wired."""

from __future__ import annotations

import doctest

import pytest

from orchestrator.api import ConfigError
from stages.dpa_rag import augment as augment_module
from stages.dpa_rag.augment import KINDS, AugmentConfig, augment
from stages.dpa_rag.schemas import Augmented
from stages.schemas import Questions
from tests.stages.conftest import fake_endpoint, prompt_file

PROMPTS = {f"{k}_prompt": prompt_file(k, "dpa_rag") for k in KINDS}
QUERIES = [{"id": "q1", "dataset": "nq", "question": "Who wrote Hamlet?",
            "answers": ["Shakespeare"], "gold": ["p1"]},
           {"id": "q2", "dataset": "nq", "question": "Where is Velmora?",
            "answers": ["north", "up north"], "gold": []}]
# a word each prompt file (our wording) asks with, to tell the kinds apart
ASKS = {"rephrase": "Rephrase", "complexity": "more complex", "decompose": "Decompose",
        "constraint": "constraint", "sparql": "SPARQL"}


def test_doctests():
    assert doctest.testmod(augment_module).failed == 0


def kind_of(conversation) -> str:
    text = conversation[-1]["content"]
    return next(k for k, word in ASKS.items() if word in text)


def test_every_query_and_its_five_augmentations(env, monkeypatch):
    table, written, ctx = env

    def answer(conv, params):
        question = conv[-1]["content"].split("Query: ")[1].split("\n")[0]
        return f' "{kind_of(conv)} of {question}" '

    calls = fake_endpoint(monkeypatch, answer)
    out = written(Augmented, augment(table(Questions, QUERIES), AugmentConfig(seed=3),
                                     ctx("augment"), **PROMPTS))
    (asked, params), = calls                       # one batch: 2 queries x 5 kinds
    assert asked == 10 and (params["temperature"], params["max_tokens"], params["seed"]) == \
        (1.0, 256, 3)
    assert [r["id"] for r in out] == ["q1"] + [f"q1#{k}" for k in KINDS] + \
        ["q2"] + [f"q2#{k}" for k in KINDS]
    assert [r["kind"] for r in out] == (["original"] + list(KINDS)) * 2
    by_id = {r["id"]: r for r in out}
    assert by_id["q1"]["question"] == "Who wrote Hamlet?" and by_id["q1"]["source_id"] == "q1"
    assert by_id["q2#sparql"]["question"] == "sparql of Where is Velmora?"  # quotes stripped
    for r in out:
        source = QUERIES[0] if r["source_id"] == "q1" else QUERIES[1]
        assert (r["answers"], r["gold"], r["dataset"]) == \
            (source["answers"], source["gold"], "nq")


def test_empty_replies_are_dropped_and_counted(env, monkeypatch, caplog):
    table, written, ctx = env
    fake_endpoint(monkeypatch, lambda conv, params:
                  "  " if kind_of(conv) == "decompose" else "```sparql\nSELECT ?x\n```")
    cfg = AugmentConfig(kinds=["decompose", "sparql"])
    with caplog.at_level("INFO"):
        out = written(Augmented, augment(table(Questions, QUERIES), cfg, ctx("augment"),
                                         **PROMPTS))
    assert [r["id"] for r in out] == ["q1", "q1#sparql", "q2", "q2#sparql"]
    assert out[1]["question"] == "SELECT ?x"
    assert "'decompose': 2" in caplog.text


def test_a_listed_kind_needs_its_prompt_wired(env, monkeypatch):
    table, _, ctx = env
    fake_endpoint(monkeypatch, lambda conv, params: "x")
    wired = {k: v for k, v in PROMPTS.items() if k != "sparql_prompt"}
    with pytest.raises(ConfigError, match="kinds lists 'sparql' but the input 'sparql_prompt' "
                                          "is not wired") as err:
        augment(table(Questions, QUERIES), AugmentConfig(), ctx("augment"), **wired)
    assert "conf/prompts/dpa_rag/sparql.yaml" in err.value.hint
    # not listed: not needed
    out = augment(table(Questions, QUERIES), AugmentConfig(kinds=["rephrase"]), ctx("augment"),
                  **wired)
    assert [r["kind"] for r in out] == ["original", "rephrase"] * 2


def test_config_refuses_unknown_or_repeated_kinds():
    with pytest.raises(ConfigError, match=r"kinds: unknown \['paraphrase'\]"):
        AugmentConfig(kinds=["paraphrase"])
    with pytest.raises(ConfigError, match="kinds: lists a kind twice"):
        AugmentConfig(kinds=["sparql", "sparql"])
    assert AugmentConfig().llm.model == "gpt-3.5-turbo"
    assert AugmentConfig().llm.api_key_env == "OPENAI_API_KEY"
