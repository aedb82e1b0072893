"""``selfrag.split``'s sentence queries and utility judgments, and what ``selfrag.label`` does with
an unreadable one (the seed: data_creation/generator/create_retrieval_data.py and
postprocess_data.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from orchestrator.api import File
from orchestrator.artifacts import Ref
from stages.schemas import Model, Questions, Retrieved
from stages.selfrag.label import LabelConfig, label
from stages.selfrag.schemas import (IsRelPrompt, MultiRetrievalPrompt, RetrievalPrompt, SplitItems,
                                    SupportPrompt, UtilityPrompt)
from stages.selfrag.split import SplitConfig, split
from tests.stages.conftest import fake_endpoint

PROMPTS = Path(__file__).resolve().parents[3] / "conf" / "prompts" / "selfrag"
CLAIM = "Is the following claim true or false? Answer true or false.\n\n## Input:\n\nVelmora is a river city."
SENTENCE = "Velmora was founded in 1852 by a mill on the river."


def _prompt(kind: type[File], name: str):
    return kind(Ref("file", kind.type_name(), "hash", [str(PROMPTS / f"{name}.yaml")]))


def _split(model_env, rows: list[dict]):
    art, ctx = model_env
    return split(art(Questions, rows), art(Model, "unused-critic"),
                 _prompt(RetrievalPrompt, "retrieval"), _prompt(UtilityPrompt, "utility"),
                 SplitConfig(), ctx("split"))


def _critic(utility: dict[str, str]):
    """[Retrieval] for every item; the utility answer picked by a word of the item's output."""
    def answer(conversation, params):
        text = conversation[-1]["content"]
        if "Rate how useful" not in text:
            return "[Retrieval]"
        return next((a for word, a in utility.items() if word in text), "[Utility:4]")
    return answer


def test_sentence_queries_leave_out_the_task_instruction(model_env, monkeypatch):
    """create_retrieval_data.py: ``instruction.split("## Input:\\n\\n")[1]`` + " " + sentence."""
    fake_endpoint(monkeypatch, _critic({}))
    rows = [{"id": "f1", "dataset": "fever", "question": CLAIM, "answers": [SENTENCE], "gold": []},
            {"id": "q1", "dataset": "nq", "question": "Who founded Velmora?",
             "answers": [SENTENCE], "gold": []}]
    out = _split(model_env, rows)
    assert [q["question"] for q in out.queries] == [f"Velmora is a river city. {SENTENCE}",
                                                   f"Who founded Velmora? {SENTENCE}"]
    assert out.items[0]["question"] == CLAIM          # the item keeps its whole instruction


def test_an_unreadable_utility_is_kept_none_and_gets_no_query(model_env, monkeypatch, caplog):
    """postprocess_data.py: an unreadable utility judgment skips the item (it used to become
    [Utility:1] and train the generator on a utility the critic never gave)."""
    fake_endpoint(monkeypatch, _critic({"mill": "I cannot rate this."}))
    rows = [{"id": "a", "dataset": "nq", "question": "Who founded Velmora?",
             "answers": [SENTENCE], "gold": []},
            {"id": "b", "dataset": "nq", "question": "Where is Velmora?",
             "answers": ["Velmora lies on the Brook river in the north."], "gold": []}]
    with caplog.at_level(logging.INFO):
        out = _split(model_env, rows)
    assert [r["utility"] for r in out.items] == [None, "[Utility:4]"]
    assert [q["id"] for q in out.queries] == ["b#0"]
    assert "1 with an unreadable utility judgment" in caplog.text


def test_label_drops_items_whose_utility_is_unreadable(model_env, caplog):
    art, ctx = model_env
    rows = [{"id": f"q{i}", "dataset": "asqa", "question": f"What is {i}?", "answers": [str(i)],
             "gold": [], "decision": "[No Retrieval]",
             "utility": None if i % 2 else "[Utility:5]", "sentences": [str(i)],
             "skipped": [False]} for i in range(6)]
    with caplog.at_level(logging.INFO):
        out = label(art(SplitItems, rows), art(Retrieved, []), art(Retrieved, []),
                    art(Model, "unused-critic"),
                    _prompt(IsRelPrompt, "relevance"), _prompt(SupportPrompt, "support"),
                    _prompt(MultiRetrievalPrompt, "multi_retrieval"),
                    LabelConfig(keep_no_retrieval=1.0), ctx("label"))
    assert [r["id"] for r in out] == ["q0", "q2", "q4"]
    assert [r["messages"][1]["content"] for r in out][0] == "[No Retrieval]0[Utility:5]"
    assert "3 dropped for an unreadable utility judgment" in caplog.text
