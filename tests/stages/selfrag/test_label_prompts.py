"""What ``selfrag.label`` shows the critic for a multi-sentence output, against the original
(AkariAsai/self-rag, data_creation/generator):

* the multi-sentence retrieval decision reads as evidence the first passage of the *initial*
  retrieval (instruction + whole output), the same for every sentence: create_retrieval_data.py
  builds ``id2evidence`` from the initial retrieval's ``ctxs[0]`` and gives it to every sentence
  of the item; it used to read the previous sentence's first passage;
* the support judgment of a sentence sees the sentences before it (run_reward_vllm.py's
  ``ground_multi_input`` has a "Preceding sentences" line, ``None`` for the first sentence); it
  used to see the sentence alone;
* the multi-sentence decision's instruction is the task input without the task boilerplate
  (create_retrieval_data.py: ``instruction.split("## Input:\\n\\n")[1]``).

A scripted critic records every prompt; no model."""

from __future__ import annotations

from pathlib import Path

import yaml

from orchestrator.api import File
from orchestrator.artifacts import Ref
from stages.schemas import Model, Retrieved
from stages.selfrag.label import LabelConfig, label
from stages.selfrag.schemas import IsRelPrompt, MultiRetrievalPrompt, SplitItems, SupportPrompt
from tests.stages.conftest import fake_endpoint

REPO = Path(__file__).resolve().parents[3]
PROMPTS = REPO / "conf" / "prompts" / "selfrag"
CLAIM = "Is the following claim true or false? Answer true or false.\n\n## Input:\n\nVelmora is old."
SENTENCES = ["Velmora was founded in 1852 by a miller.", "Its mill stood on the Havenen Brook.",
             "The town later grew into a river city."]


def _prompt(kind: type[File], name: str):
    return kind(Ref("file", kind.type_name(), "hash", [str(PROMPTS / f"{name}.yaml")]))


def _ctx(pid: str, title: str) -> dict:
    return {"id": pid, "title": title, "text": f"{title} text.", "score": 1.0}


def _label(model_env, monkeypatch, initial_ctxs: list[dict]) -> list[str]:
    """Label one three-sentence item; the user messages the critic was asked, in order."""
    asked: list[str] = []

    def critic(conversation, params):
        text = conversation[-1]["content"]
        asked.append(text)
        if "Next sentence:" in text:
            return "[Retrieval]"
        return "[Relevant]" if "Answer with [Relevant]" in text else "[Fully supported]"

    fake_endpoint(monkeypatch, critic)
    art, ctx = model_env
    item = {"id": "f1", "dataset": "fever", "question": CLAIM, "answers": [" ".join(SENTENCES)],
            "gold": [], "decision": "[Retrieval]", "utility": "[Utility:5]",
            "sentences": SENTENCES, "skipped": [False, False, False]}
    # each sentence retrieves its own passage; the initial retrieval found another one
    sentences = [{"id": f"f1#{k}", "dataset": "fever", "question": s, "answers": [s], "gold": [],
                  "ctxs": [_ctx(f"p{k}", f"Sentence{k}")]} for k, s in enumerate(SENTENCES)]
    initial = [{"id": "f1", "dataset": "fever", "question": CLAIM, "answers": item["answers"],
                "gold": [], "ctxs": initial_ctxs}]
    out = label(art(SplitItems, [item]), art(Retrieved, sentences), art(Retrieved, initial),
                art(Model, "unused-critic"), _prompt(IsRelPrompt, "relevance"),
                _prompt(SupportPrompt, "support"), _prompt(MultiRetrievalPrompt, "multi_retrieval"),
                LabelConfig(top_n=1), ctx("label"))
    assert [r["id"] for r in out] == ["f1"]
    return asked


def _field(prompt: str, name: str) -> str:
    """The value of a ``Name: value`` line of a filled prompt (up to the next field)."""
    tail = prompt.split(f"\n{name}: ", 1)[1]
    return tail.split("\nPreceding sentences: ")[0].split("\nEvidence: ")[0] \
        .split("\nOutput: ")[0].split("\nNext sentence: ")[0]


def test_multi_sentence_evidence_is_the_initial_retrievals_first_passage(model_env, monkeypatch):
    asked = _label(model_env, monkeypatch, [_ctx("i0", "Initial"), _ctx("i1", "Second")])
    multi = [p for p in asked if "Next sentence:" in p]
    assert [_field(p, "Next sentence") for p in multi] == SENTENCES[1:]
    # sentences 1 and 2 both read the initial top-1 passage (it used to be Sentence0, Sentence1)
    assert [_field(p, "Evidence") for p in multi] == ["Initial\nInitial text."] * 2
    assert [_field(p, "Preceding sentences") for p in multi] == [
        SENTENCES[0], f"{SENTENCES[0]} {SENTENCES[1]}"]
    # the task input, not the task boilerplate (relevance and support keep the whole instruction)
    assert {_field(p, "Task instruction") for p in multi} == {"Velmora is old."}


def test_multi_sentence_evidence_without_an_initial_passage_is_none(model_env, monkeypatch):
    asked = _label(model_env, monkeypatch, [])
    multi = [p for p in asked if "Next sentence:" in p]
    assert [_field(p, "Evidence") for p in multi] == ["None", "None"]


def test_support_prompt_shows_the_preceding_sentences(model_env, monkeypatch):
    asked = _label(model_env, monkeypatch, [_ctx("i0", "Initial")])
    support = [p for p in asked if "[Fully supported]" in p and "Next sentence:" not in p]
    assert [_field(p, "Output") for p in support] == SENTENCES
    assert [_field(p, "Preceding sentences") for p in support] == [
        "None", SENTENCES[0], f"{SENTENCES[0]} {SENTENCES[1]}"]
    assert [_field(p, "Evidence") for p in support] == [
        f"Sentence{k}\nSentence{k} text." for k in range(3)]    # each sentence's own passage
    assert {_field(p, "Task instruction") for p in support} == {CLAIM}
    relevance = [p for p in asked if "Answer with [Relevant]" in p]
    assert len(relevance) == 3 and not any("Preceding sentences" in p for p in relevance)


def test_judge_fills_the_support_prompts_preceding_sentences_with_none():
    """A one-sentence output is judged as it is, and nothing precedes it (the seed's critic data
    has the first-sentence template, without preceding sentences)."""
    from stages.selfrag.judge import judgment_rows

    jobs = judgment_rows([{"id": "q", "question": "Who?", "answers": ["Ann"],
                           "ctxs": [{"id": "p", "title": "T", "text": "Ann did."}]}], 3)
    (support,) = [j for j in jobs if j["task"] == "support"]
    assert support["fields"] == {"instruction": "Who?", "preceding": "None", "output": "Ann",
                                 "evidence": "T\nAnn did."}
    assert "preceding" in SupportPrompt.fills


def test_the_pipeline_retrieves_once_for_instruction_and_output():
    """create_retrieval_data.py without --multiple_sent: the query is instruction + " " + output;
    its result is label's ``initial`` input."""
    from stages.common.retrieve import _query_text

    steps = yaml.safe_load((REPO / "conf" / "selfrag" / "pipeline.yaml").read_text())["steps"]
    step = steps["retrieve_initial"]
    assert step["stage"] == "retrieve" and step["inputs"]["questions"] == "instructions"
    assert steps["label"]["inputs"]["initial"] == "retrieve_initial"
    row = {"id": "q1", "question": "Who founded Velmora?", "answers": ["Ardan Velsh did."]}
    assert _query_text(step["query_template"], row, False) == "Who founded Velmora? Ardan Velsh did."
