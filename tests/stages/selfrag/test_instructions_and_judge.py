"""``selfrag.instructions`` keeps a row's other columns (an evaluation set's shipped ``ctxs``,
ASQA's references) and finds a set's task family by name as everywhere (``arc_challenge_*``,
PubHealth's ``health_claims_*``); ``selfrag.judge`` says which key to lower when its dev split
would leave the critic no training row."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.api import ConfigError
from orchestrator.artifacts import Ref
from stages.schemas import Questions, Retrieved
from stages.selfrag.build_instructions import InstructionsConfig, instructions
from stages.selfrag.judge import JudgeConfig, judge
from stages.selfrag.schemas import (IsRelPrompt, MultiRetrievalPrompt, RetrievalPrompt,
                                    SupportPrompt, TaskInstructions, UtilityPrompt)

PROMPTS = Path(__file__).resolve().parents[3] / "conf" / "prompts" / "selfrag"


def _prompt(kind, name: str):
    return kind(Ref("file", kind.type_name(), "hash", [str(PROMPTS / f"{name}.yaml")]))


HEADS = _prompt(TaskInstructions, "task_instructions")


def test_shipped_passages_and_references_pass_through(env):
    table, written, ctx = env
    ctxs = [{"id": "7", "title": "Kelmaro", "text": "Kelmaro was founded in 1852.", "score": None}]
    rows = [{"id": "popqa/0", "dataset": "popqa_longtail_w_gs", "question": "When?",
             "answers": ["1852"], "gold": [], "ctxs": ctxs},
            {"id": "h/0", "dataset": "health_claims_processed", "question": "Kelmaro is old.",
             "answers": ["true"], "gold": [], "ctxs": ctxs},
            {"id": "arc/0", "dataset": "arc_challenge_processed", "question": "Which?",
             "answers": ["A"], "gold": [], "ctxs": ctxs}]
    out = written(Questions, instructions(table(Retrieved, rows), HEADS, InstructionsConfig(),
                                          ctx("eval_instructions")))
    assert [r["ctxs"][0]["id"] for r in out] == ["7", "7", "7"]
    assert out[0]["question"] == "When?"
    assert out[1]["question"].startswith("Is the following claim true or false")
    assert out[2]["question"].startswith("Choose the best answer")


def test_a_dev_split_that_takes_every_judgment_names_dev_size(env):
    table, _, ctx = env
    rows = [{"id": f"q{i}", "dataset": "nq", "question": f"Who founded town {i}?",
             "answers": ["Ardan"], "gold": ["1"],
             "ctxs": [{"id": "1", "title": "T", "text": "Ardan founded it.", "score": None}]}
            for i in range(3)]
    with pytest.raises(ConfigError, match="dev_size"):
        judge(table(Retrieved, rows), _prompt(RetrievalPrompt, "retrieval"),
              _prompt(IsRelPrompt, "relevance"), _prompt(SupportPrompt, "support"),
              _prompt(UtilityPrompt, "utility"), _prompt(MultiRetrievalPrompt, "multi_retrieval"),
              JudgeConfig(teacher="reference"), ctx("judge"))


def _judge(table, ctx, rows, **cfg):
    return judge(table(Retrieved, rows), _prompt(RetrievalPrompt, "retrieval"),
                 _prompt(IsRelPrompt, "relevance"), _prompt(SupportPrompt, "support"),
                 _prompt(UtilityPrompt, "utility"),
                 _prompt(MultiRetrievalPrompt, "multi_retrieval"),
                 JudgeConfig(teacher="reference", **cfg), ctx("judge"))


def test_the_reference_teacher_refuses_data_without_gold_ids(env):
    """Own data without 'gold' used to pass: every instruction [No Retrieval], every passage
    [Irrelevant], and a critic that never retrieves."""
    import doctest

    import stages.selfrag.judge as judge_module
    from orchestrator.api import DataError

    table, _, ctx = env
    rows = [{"id": f"q{i}", "dataset": "nq", "question": f"Who founded town {i}?",
             "answers": ["Ardan"], "gold": [],
             "ctxs": [{"id": "1", "title": "T", "text": "Ardan founded it.", "score": None}]}
            for i in range(6)]
    extra = [{"id": "nr0", "dataset": "no_retrieval", "question": "What is 2 plus 2?",
              "answers": ["4"], "gold": [], "ctxs": []}]
    with pytest.raises(DataError, match=r"teacher: reference needs gold passage ids, and none "
                                        r"of the 6 instructions from the data has any"):
        _judge(table, ctx, rows + extra, dev_size=1)
    assert doctest.testmod(judge_module).failed == 0


def test_the_reference_teacher_warns_when_no_passage_is_gold(env, caplog):
    import logging

    caplog.set_level(logging.INFO)
    table, _, ctx = env
    rows = [{"id": f"q{i}", "dataset": "nq", "question": f"Who founded town {i}?",
             "answers": ["Ardan"], "gold": ["kb9"] if i else [],
             "ctxs": [{"id": "1", "title": "T", "text": "Ardan founded it.", "score": None}]}
            for i in range(6)]
    _judge(table, ctx, rows, dev_size=1)
    assert "1 of 6 instructions from the data have no gold passage ids" in caplog.text
    assert "none of the 6 retrieved passages judged is a gold passage" in caplog.text
    assert "relevance: [Irrelevant] 6" in caplog.text
    assert "24 judgments, 0 unreadable, 0 dropped by the paper's rules" in caplog.text


def test_a_question_id_of_a_generated_no_retrieval_item_is_refused(env):
    """The no-retrieval items are ``nr0``, ``nr1``, ...: a loaded question called ``nr1`` used
    to pass, two rows with one id, which label and evaluation then matched as one."""
    from orchestrator.api import DataError

    table, written, ctx = env
    rows = [{"id": i, "dataset": "nq", "question": "Who founded Velmora?", "answers": ["Ardan"],
             "gold": []} for i in ("q0", "nr1")]
    with pytest.raises(DataError) as info:
        instructions(table(Questions, rows), HEADS, InstructionsConfig(no_retrieval=3),
                     ctx("eval_instructions"))
    assert ("step 'eval_instructions': question id 'nr1' of the loaded data is also the id of a "
            "generated no-retrieval instruction (nr0 to nr2)") in info.value.message
    assert "steps.eval_instructions.no_retrieval: 0" in info.value.message
    out = written(Questions, instructions(table(Questions, rows), HEADS,
                                          InstructionsConfig(no_retrieval=1),
                                          ctx("instructions")))
    assert [r["id"] for r in out] == ["q0", "nr1", "nr0"]   # no clash with nr0 alone


def test_the_critic_learns_what_a_later_sentence_needs(env):
    """Before: the judge made rows for four tasks, so the critic never saw the three-way
    multi-sentence question that `selfrag.label` asks it for every sentence after the first."""
    table, written, ctx = env
    gold = {"id": "1", "title": "T", "text": "Ardan founded it.", "score": None}
    other = {"id": "2", "title": "U", "text": "A mill.", "score": None}
    rows = [{"id": f"q{i}", "dataset": "asqa", "question": f"Who founded town {i}?",
             "answers": ["Ardan founded it. He came from the north. He stayed."], "gold": ["1"],
             "ctxs": [gold if i % 2 else other]} for i in range(4)]
    train, dev = _judge(table, ctx, rows, dev_size=0)
    multi = sorted((r["id"], r["messages"][-1]["content"]) for r in train + dev
                   if r["task"] == "multi_retrieval")
    assert multi == [(f"q{i}:multi_retrieval:s{k}",
                      "[Continue to Use Evidence]" if i % 2 else "[Retrieval]")
                     for i in range(4) for k in (1, 2)]
    support = sorted(r["id"] for r in train + dev if r["task"] == "support")
    assert support == sorted(f"q{i}:support:{tag}" for i in range(4)    # before: one per item
                             for tag in ("1" if i % 2 else "2", "s1:1" if i % 2 else "s1:2",
                                         "s2:1" if i % 2 else "s2:2"))
    asked = next(r for r in train if r["id"] == "q1:multi_retrieval:s2")["messages"][0]["content"]
    assert "Preceding sentences: Ardan founded it. He came from the north." in asked
    assert "Next sentence: He stayed." in asked and "Evidence: T\nArdan founded it." in asked


def test_a_teacher_reply_without_a_valid_decision_is_dropped():
    """Before: any reply the reader could not place became a [No Retrieval] training row; the
    seed's combine step drops it."""
    from stages.selfrag.judge import _read

    assert _read("retrieval", "I cannot tell.") is None
    assert _read("retrieval", "[Continue to Use Evidence]") is None   # not an answer here
    assert _read("multi_retrieval", "Yes") is None
    assert _read("multi_retrieval", "Rating: [Continue to Use Evidence]") == \
        "[Continue to Use Evidence]"
    assert _read("retrieval", "Need retrieval?: [No]") == "[No Retrieval]"


def test_the_task_instructions_are_a_file_a_user_can_replace(env, tmp_path):
    """Before: the wording was a dict in the code, and the docstring named a `task_instructions`
    setting that did not exist, so the paper's TASK_INST text could not be given."""
    from orchestrator.api import ConfigError
    from stages.selfrag.instructions import read_task_instructions

    table, written, ctx = env
    own = tmp_path / "inst.yaml"
    own.write_text("fever: Is the following statement correct or not? Say true or false.\n")
    rows = [{"id": "f/0", "dataset": "fever_dev", "question": "Paris is in Peru.",
             "answers": ["false"], "gold": []}]
    heads = TaskInstructions(Ref("file", TaskInstructions.type_name(), "h", [str(own)]))
    out = written(Questions, instructions(table(Questions, rows), heads, InstructionsConfig(),
                                          ctx("instructions")))
    assert out[0]["question"] == ("Is the following statement correct or not? Say true or "
                                  "false.\n\n## Input:\n\nParis is in Peru.")
    own.write_text("fever: [true, false]\n")
    with pytest.raises(ConfigError, match=rf"task instructions file {own}: 'fever' must be a "
                                          r"non-empty string \(its instruction\)"):
        read_task_instructions(own)
    own.write_text("fever: 'a\n")
    with pytest.raises(ConfigError, match=rf"task instructions file {own}:\d+:\d+: not valid YAML"):
        TaskInstructions.check_source(own)


@pytest.mark.parametrize("dataset, head", [
    ("openbookqa", "Choose the best answer among the options A, B, C and D."),
    ("openbookqa_processed_retrieved", "Choose the best answer among the options A, B, C and D."),
    ("obqa", "Choose the best answer among the options A, B, C and D."),
    ("medqa", "Choose the best answer among the options."),
    ("medqa_test_en_retrieved", "Choose the best answer among the options."),
    ("pubmedqa", None)])                         # "medqa" is not a whole word of "pubmedqa"
def test_the_shipped_file_gives_openbookqa_and_medqa_their_instruction(dataset, head):
    """Before: the shipped file keyed only ``arc`` and ``obqa``, so OpenBookQA under its full
    name and MedQA got their options with no instruction asking for a choice. MedQA has five
    options (A-E), so its instruction names no letters."""
    from stages.selfrag.instructions import read_task_instructions, task_instruction

    heads = read_task_instructions(PROMPTS / "task_instructions.yaml")
    text = task_instruction(dataset, "Which is a metal?", ["wood", "iron"], heads)
    body = "Which is a metal?\nA: wood\nB: iron"
    assert text == (f"{head}\n\n## Input:\n\n{body}" if head else body)
