"""Self-RAG against the original code (AkariAsai/self-rag @1fcdc42), fidelity audit fixes:
the long-form adaptive pre-check (F1), the teacher's own prompts (F2), instruction data in the
seed's own format (F3) and the task instructions of ELI5, WoW and T-REx (F4). The endpoint is a
scripted test double (no model); stages are called directly."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import pytest
import yaml
from tests.conftest import REPO

from orchestrator.artifacts import Ref
from stages.lib.endpoint import ChatReply
from stages.schemas import Model, Predictions, Questions, Retrieved
from stages.selfrag.schemas import (IsRelPrompt, MultiRetrievalPrompt, RetrievalPrompt,
                                    SupportPrompt, TaskInstructions, UtilityPrompt)
from stages.selfrag.short_form import NO_RETRIEVAL_PREFIX
from stages.selfrag.tokens import (FULLY, IRRELEVANT, NO_RETRIEVAL, RELEVANT, RETRIEVAL,
                                   UTILITY)

PROMPTS = REPO / "conf" / "prompts" / "selfrag"
VELMORA = {"id": "p1", "title": "Velmora", "text": "Velmora was founded by Ardan Velsh.",
           "score": 1.0}


def _file(kind, path: Path):
    return kind(Ref("file", kind.type_name(), "hash", [str(path)]))


def _serve(monkeypatch, client):
    """Every ``open_client`` of the stages under test hands out ``client``."""
    monkeypatch.setattr("stages.lib.endpoint.open_client",
                        lambda *a, **k: contextlib.nullcontext(client))


# F1. the long-form pre-check

class PreCheck:
    """The generator as the stage sees it: a decision request (``logprobs_of`` Ret / NoRet, no
    prefix) gets the scripted pre-check of its question: the generated pieces (reflection tokens
    kept) and p(Ret) at the first position; the reply's text is the decoded text without the
    special tokens, as the transformers and vLLM backends decode it."""

    def __init__(self, script):
        self.script, self.asked = script, []

    def complete(self, asks, progress=None):
        self.asked += asks
        return [self._reply(a) for a in asks]

    def _reply(self, ask):
        if not ask.prefix:
            pieces, p = self.script[ask.messages[-1]["content"]]
            lp = [{RETRIEVAL: math.log(p), NO_RETRIEVAL: math.log(1 - p)}] + [{}] * len(pieces)
            shown = "".join(t for t in pieces if not t.startswith("["))
            return ChatReply([shown], tokens=[list(pieces)], logprobs=[lp[:len(pieces)]])
        if ask.prefix == NO_RETRIEVAL_PREFIX:
            return ChatReply(["Velmora is old."])
        tokens = [RELEVANT, "It is old.", FULLY, UTILITY[4]]   # after a passage
        return ChatReply(["It is old."], tokens=[tokens],
                         logprobs=[[{RELEVANT: 0.0, IRRELEVANT: -100.0}, {}, {}, {}]])


SCRIPT = {   # question: (pre-check pieces, p(Ret) at the first position)
    "no token": ([NO_RETRIEVAL, "Velmora", " is old."], 0.3),
    "token": ([RETRIEVAL, "<paragraph>"], 0.3),
    "token after a blank line": ([NO_RETRIEVAL, "Velmora is old.", "\n\n", RETRIEVAL], 0.9),
    "token, low p": ([RETRIEVAL, "<paragraph>"], 0.1),
    "short": ([NO_RETRIEVAL], 0.3),
}


def _infer(model_env, monkeypatch, **cfg):
    from stages.selfrag.infer import SelfragInferConfig, infer

    art, ctx = model_env
    rows = [{"id": q, "dataset": "popqa" if q == "short" else "asqa", "question": q,
             "answers": ["Ardan Velsh"], "gold": [], "ctxs": [VELMORA]} for q in SCRIPT]
    client = PreCheck(SCRIPT)
    _serve(monkeypatch, client)
    out = infer(art(Retrieved, rows), art(Model, "/no/model"),
                SelfragInferConfig(mode="adaptive_retrieval", ndocs=1, **cfg), ctx("infer"))
    got = {r["id"]: r for r in art(Predictions, out).rows()}
    decisions = {a.messages[-1]["content"]: a for a in client.asked if not a.prefix}
    return {q: r["retrieved"] for q, r in got.items()}, decisions, out


def test_long_form_retrieves_only_when_the_precheck_holds_the_token(model_env, monkeypatch):
    """Before: a long-form question decided by the threshold alone, so a greedy pre-check that
    starts with [No Retrieval] at p(Ret) 0.3 > 0.2 retrieved; the seed
    (run_long_form_static.py lines 173-189) retrieves iff [Retrieval] is in its 25 greedy tokens
    up to the first blank line and the ratio passes."""
    from stages.selfrag.infer import infer

    retrieved, asked, out = _infer(model_env, monkeypatch)
    assert retrieved == {"no token": False, "token": True, "token after a blank line": False,
                         "token, low p": False, "short": True}   # short form: threshold alone
    assert [(asked[q].max_tokens, asked[q].temperature) for q in SCRIPT] == \
        [(25, 0.0)] * 4 + [(1, None)]
    assert [r["p_retrieve"] for r in out] == pytest.approx([0.3, 0.3, 0.9, 0.1, 0.3])
    assert infer.stage_spec.version >= 4                # cached answers are not reused


def test_precheck_tokens_0_decides_by_the_threshold_alone(model_env, monkeypatch):
    retrieved, asked, _ = _infer(model_env, monkeypatch, long_form_precheck_tokens=0)
    assert retrieved == {"no token": True, "token": True, "token after a blank line": True,
                         "token, low p": False, "short": True}
    assert {a.max_tokens for a in asked.values()} == {1}


def test_the_recipes_give_the_seeds_precheck():
    conf = yaml.safe_load((REPO / "conf" / "selfrag_llama2.yaml").read_text())
    assert conf["selfrag"]["long_form_precheck_tokens"] == 25
    pipe = yaml.safe_load((REPO / "conf" / "selfrag" / "pipeline.yaml").read_text())
    assert pipe["steps"]["infer_adaptive"]["long_form_precheck_tokens"] == \
        "${selfrag.long_form_precheck_tokens}"


# F3. the seed's own instruction data

# two records as the seed's process_data scripts write them (our own stand-in wording):
# instruction = task instruction + "## Input:\n\n" + item, no blank line before it
SEED_RECORDS = [
    {"id": "arc_easy_0", "dataset": "arc_easy", "answers": ["B"], "gold": [],
     "question": "Pick the best of the options A to D.## Input:\n\nWhich is a metal?\n"
                 "A: wood\nB: iron\nC: glass\nD: salt"},
    {"id": "fever_3", "dataset": "fever", "answers": ["false"], "gold": [],
     "question": "Say whether the statement holds: true or false.## Input:\n\n"
                 "Paris is in Peru."},
]


def test_seed_format_instructions_get_no_second_task_instruction(env):
    """Before: 'Choose the best answer ...\\n\\n## Input:\\n\\nPick the best ...## Input:\\n\\n
    Which is a metal? ...': our task instruction went in front of the seed's."""
    from stages.selfrag.build_instructions import InstructionsConfig, instructions

    table, written, ctx = env
    heads = _file(TaskInstructions, PROMPTS / "task_instructions.yaml")
    out = written(Questions, instructions(table(Questions, SEED_RECORDS), heads,
                                          InstructionsConfig(), ctx("instructions")))
    assert [r["question"] for r in out] == [r["question"] for r in SEED_RECORDS]
    # our own format still gets its instruction
    mine = [{**SEED_RECORDS[1], "question": "Paris is in Peru."}]
    out = written(Questions, instructions(table(Questions, mine), heads, InstructionsConfig(),
                                          ctx("instructions")))
    assert out[0]["question"].endswith("false.\n\n## Input:\n\nParis is in Peru.")


class Critic:
    """The critic asked by selfrag.split: [Retrieval] for each item, utility 5."""

    def chat(self, asks, progress=None, **kw):
        return [ChatReply(["[Retrieval] 5"]) for _ in asks]


def test_seed_format_sentence_queries_leave_the_boilerplate_out(env, monkeypatch):
    """Before: the queries split only on '\\n\\n## Input:\\n\\n', so the seed's task instruction
    stayed in the retrieval query; the seed's create_retrieval_data.py (lines 68-70) strips it."""
    from stages.selfrag.judge import judgment_rows
    from stages.selfrag.split import SplitConfig, split, task_input

    table, _, ctx = env
    _serve(monkeypatch, Critic())
    critic = Model(Ref("dir", Model.type_name(), "hash", ["/no/critic"]))
    got = split(table(Questions, SEED_RECORDS), critic,
                _file(RetrievalPrompt, PROMPTS / "retrieval.yaml"),
                _file(UtilityPrompt, PROMPTS / "utility.yaml"), SplitConfig(), ctx("split"))
    assert [q["question"] for q in got.queries] == [
        "Which is a metal?\nA: wood\nB: iron\nC: glass\nD: salt B", "Paris is in Peru. false"]
    assert task_input("Answer.\n\n## Input:\n\nWho?") == "Who?"          # ours, as before
    two = [{**SEED_RECORDS[1], "answers": ["It is false. Paris is in France."], "ctxs": []}]
    multi = [j for j in judgment_rows(two, 1) if j["task"] == "multi_retrieval"]
    assert multi[0]["fields"]["instruction"] == "Paris is in Peru."


# F4. ELI5, WoW and T-REx

def test_eli5_wow_and_trex_have_task_instructions():
    """Before: these three of the seed's TASK_INST families got the bare question."""
    from stages.selfrag.instructions import read_task_instructions, task_instruction

    heads = read_task_instructions(PROMPTS / "task_instructions.yaml")
    for dataset, item in (("eli5", "Why is the sky blue?"),
                          ("wow-dev-kilt", "Hi!\nHello, do you like rivers?"),
                          ("trex-dev-kilt", "Velmora [SEP] founded by")):
        got = task_instruction(dataset, item, [], heads)
        assert got.endswith("\n\n## Input:\n\n" + item) and len(got) > len(item) + 30, dataset


# F2. the teacher's own prompts

class Teacher:
    """An LLM teacher that answers every aspect in the seed's rating-and-explanation style."""

    def __init__(self):
        self.asked = []

    def chat(self, asks, progress=None, **kw):
        self.asked += asks
        return [ChatReply(["Rating: [Relevant] [Retrieval] 5 [Fully supported]\nExplanation: "
                           "the evidence names the founder."]) for _ in asks]


def _judge(env, teacher_relevance=None):
    from stages.selfrag.judge import JudgeConfig, judge

    table, _, ctx = env
    rows = [{"id": "q0", "dataset": "nq", "question": "Who founded Velmora?",
             "answers": ["Ardan Velsh founded it."], "gold": ["p1"], "ctxs": [VELMORA]}]
    extra = {} if teacher_relevance is None else {
        "teacher_relevance_prompt": _file(IsRelPrompt, teacher_relevance)}
    train, dev = judge(table(Retrieved, rows), _file(RetrievalPrompt, PROMPTS / "retrieval.yaml"),
                       _file(IsRelPrompt, PROMPTS / "relevance.yaml"),
                       _file(SupportPrompt, PROMPTS / "support.yaml"),
                       _file(UtilityPrompt, PROMPTS / "utility.yaml"),
                       _file(MultiRetrievalPrompt, PROMPTS / "multi_retrieval.yaml"),
                       JudgeConfig(teacher="llm", dev_size=0, seed=1), ctx("judge"), **extra)
    return train + dev


def test_the_teacher_can_have_its_own_prompt_while_the_critic_keeps_its_own(env, monkeypatch,
                                                                            tmp_path):
    """Before: one prompt file per aspect served both the GPT-4 teacher and the critic; the seed
    asked GPT-4 few-shot prompts (gpt4_reward/chatgpt_*.py) and trained the critic on short ones
    (combine_chat_gpt_reward.py)."""
    own = tmp_path / "teacher_relevance.yaml"
    own.write_text(yaml.safe_dump({
        "system": "You rate evidence. Example: ... Rating: [Irrelevant]\nExplanation: ...",
        "user": "TEACHER Instruction: {instruction}\nEvidence: {evidence}\nRating:"}))
    teacher = Teacher()
    _serve(monkeypatch, teacher)
    rows = _judge(env, own)
    relevance = [a for a in teacher.asked if "TEACHER" in a[-1]["content"]]
    assert len(relevance) == 1 and relevance[0][0]["role"] == "system"
    assert "Evidence: Velmora\nVelmora was founded" in relevance[0][-1]["content"]
    critic = next(r for r in rows if r["task"] == "relevance")["messages"]
    assert "TEACHER" not in critic[0]["content"] and critic[-1]["content"] == RELEVANT
    # unwired: the teacher is asked the critic's own prompt, as before
    teacher.asked.clear()
    rows = _judge(env)
    critic = next(r for r in rows if r["task"] == "relevance")["messages"]
    assert any(a == critic[:-1] for a in teacher.asked)


def test_the_pipeline_wires_the_teacher_prompts_null_by_default():
    from stages.selfrag.judge import judge

    pipe = yaml.safe_load((REPO / "conf" / "selfrag" / "pipeline.yaml").read_text())
    aspects = ("retrieval", "multi_retrieval", "relevance", "support", "utility")
    assert all(pipe["prompts"][f"teacher_{a}"] is None for a in aspects)
    wired = pipe["steps"]["judge"]["inputs"]
    assert all(wired[f"teacher_{a}_prompt"] == f"teacher_{a}_prompt" for a in aspects)
    spec = judge.stage_spec.inputs
    assert all(spec[f"teacher_{a}_prompt"].optional for a in aspects)
