"""The Self-RAG paper recipe (conf/selfrag_llama2.yaml) run as a user would try it on a laptop
before booking the cluster: ``rag run conf/selfrag_llama2.yaml`` from a folder whose ``data/``
and ``models/`` hold tiny stand-ins at the recipe's own paths, with only the overrides a CPU and
tiny models force. Every other paper setting is kept: the teacher asked through an
OpenAI-compatible endpoint as ``gpt-4`` (the repository's test server,
``tests/stages/lib/endpoint/chat_server.py``, serving a tiny model), the critic's and the
generator's training settings, the 15 special tokens, top-10 retrieval over a DPR TSV corpus,
adaptive retrieval at threshold 0.2 with the sequence score, and an evaluation folder in the
paper's released file names (PopQA, TriviaQA, PubHealth as ``health_claims_processed``) whose
passages are read as shipped, and ARC-Challenge's ``answerKey`` and ``choices``.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, rag
from tests.stages.conftest import artifact_rows
from tests.stages.lib.endpoint.conftest import start_server

pytestmark = pytest.mark.paper   # about 20-40 s each: CI runs them (pytest -m paper)

SETS = {"popqa_longtail_w_gs": 2, "triviaqa_test_w_gs": 2, "health_claims_processed": 2,
        "asqa_eval_gtr_top100": 2, "arc_challenge_processed": 2}
TOPICS = [("Kelmaro", "Kelmaro was founded in 1852 by Ardan Velsh."),
          ("Zorvia", "The capital of Zorvia is Velmora."),
          ("Havenen", "Havenen Brook is a river in the north."),
          ("Ardan Velsh", "Ardan Velsh was a miller born in 1801.")]
QA = [("When was Kelmaro founded?", ["1852"], "1"), ("What is the capital of Zorvia?", ["Velmora"], "2"),
      ("Who founded Kelmaro?", ["Ardan Velsh"], "1"), ("Where is Havenen Brook?", ["the north"], "3")]

# What a CPU and tiny models force, and nothing else (the test's endpoint is added).
CPU = ["hw.gpus=0", "hw.train_gpus=0", "hw.critic_gpus=0", "hw.shards=1",
       "engine=transformers"]                                     # vLLM needs a GPU
SIZES = ["steps.judge.dev_size=4",          # the paper's 1,500 of ~20,000 judgments; here 64
         "+steps.critic.max_steps=2", "+steps.generator.max_steps=2", "selfrag.max_new_tokens=8"]


def _ctxs(offset: int) -> list[dict]:
    return [{"id": str(1 + (offset + j) % 12), "title": TOPICS[(offset + j) % 4][0],
             "text": TOPICS[(offset + j) % 4][1]} for j in range(3)]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _paper_data(data):
    """Tiny files in the seeds' formats at the recipe's paths (SEEDS.md §2)."""
    (data / "eval_data").mkdir(parents=True)
    with open(data / "psgs_w100.tsv", "w") as f:      # DPR: id, text, title, with a header
        f.write("id\ttext\ttitle\n")
        for i in range(12):
            f.write(f"{i + 1}\t{TOPICS[i % 4][1]} Passage {i}.\t{TOPICS[i % 4][0]}\n")
    _jsonl(data / "selfrag_instructions.jsonl", [
        {"id": f"q{i}", "question": q, "answers": a, "gold": [g]}
        for i, (q, a, g) in enumerate(QA * 2)])
    ev = data / "eval_data"
    _jsonl(ev / "popqa_longtail_w_gs.jsonl", [{"id": str(i), "question": q, "answers": a,
                                               "ctxs": _ctxs(i)} for i, (q, a, _) in enumerate(QA[:2])])
    _jsonl(ev / "triviaqa_test_w_gs.jsonl", [{"id": str(i), "question": q, "answers": a,
                                              "ctxs": _ctxs(i + 1)}
                                             for i, (q, a, _) in enumerate(QA[2:])])
    _jsonl(ev / "health_claims_processed.jsonl", [
        {"id": "h0", "question": "Kelmaro was founded in 1852.", "answers": ["true"], "ctxs": _ctxs(0)},
        {"id": "h1", "question": "Zorvia has no capital.", "answers": ["false"], "ctxs": _ctxs(1)}])
    _jsonl(ev / "arc_challenge_processed.jsonl", [      # ARC: answerKey, choices {text, label}
        {"id": f"Mercury_{i}", "question": q, "answerKey": "B", "ctxs": _ctxs(i),
         "choices": {"text": ["none of these", a[0], "1801", "the south"],
                     "label": ["A", "B", "C", "D"]}} for i, (q, a, _) in enumerate(QA[:2])])
    _jsonl(ev / "asqa_eval_gtr_top100.jsonl", [          # ALCE's ASQA: long form, qa_pairs, docs
        {"id": f"a{i}", "question": q, "qa_pairs": [{"question": q, "short_answers": a}],
         "annotations": [{"long_answer": f"The answer is {a[0]}."}], "docs": _ctxs(i)}
        for i, (q, a, _) in enumerate(QA[:2])])


@pytest.fixture(scope="module")
def paper_folder(tmp_path_factory):
    """A folder laid out as the recipe expects: data/ and models/ with tiny stand-ins. The base
    model is taught to answer the critic prompts (as tests/stages/selfrag/test_pipeline.py),
    so the teacher's and the critic's judgments are readable."""
    from stages.lib.testing.teach import teach
    from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder
    from tests.stages.selfrag.test_pipeline import _critic_lessons

    root = tmp_path_factory.mktemp("paper_selfrag")
    texts = ["[Retrieval] [No Retrieval] [Relevant] [Irrelevant] [Fully supported] [Utility:5]",
             "Decide whether reading documents Task instruction: Evidence: Output: What is plus"]
    base = tiny_causal_lm(root / "models" / "llama2_7b", texts)
    teach(base, _critic_lessons(), steps=200, lr=3e-3)
    tiny_encoder(root / "models" / "contriever-msmarco", texts)
    _paper_data(root / "data")
    return root


@pytest.fixture(scope="module")
def teacher_server(paper_folder, tmp_path_factory):
    """The OpenAI-compatible test server answering as gpt-4 with the taught tiny model."""
    proc, server = start_server(paper_folder / "models" / "llama2_7b",
                                tmp_path_factory.mktemp("teacher_server"), "sk-tiny-teacher",
                                "gpt-4")
    yield server
    proc.terminate()
    proc.wait(timeout=30)


def test_selfrag_paper_recipe_on_cpu_with_tiny_models(paper_folder, teacher_server, tmp_path,
                                                      monkeypatch, one_torch_thread):
    from stages.lib.testing.teach import safetensor_weights
    from stages.selfrag.tokens import SPECIAL_TOKENS

    monkeypatch.chdir(paper_folder)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tiny-teacher")
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    overrides = CPU + SIZES + [f"steps.judge.llm.base_url={teacher_server.base_url}"]
    assert rag("run", str(REPO / "conf" / "selfrag_llama2.yaml"), *overrides, "--no-progress",
               runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["state"] == "ok" and {s["state"] for s in status["steps"].values()} == {"done"}
    arts = runs / "latest" / "artifacts"

    # the teacher was asked through the endpoint; the critic trained on its four judgments
    assert teacher_server.stats()["served"] > 0
    judged = artifact_rows(runs, "judge.train")
    assert {"retrieval", "relevance", "support", "utility"} <= {r["task"] for r in judged}
    base = safetensor_weights(paper_folder / "models" / "llama2_7b")
    critic = safetensor_weights(arts / "critic.out")
    assert any(not (base[k] == critic[k]).all() for k in base if k in critic), "critic untrained"
    stats = json.loads((arts / "critic.out" / "training_stats.json").read_text())
    assert sum(stats["tasks"].values()) == len(judged)

    # the critic labelled the generator data; the generator trained with the 15 tokens
    targets = artifact_rows(runs, "label.out")
    assert targets and any("<paragraph>" in r["messages"][-1]["content"] for r in targets)
    ids = json.loads((arts / "generator.out" / "special_tokens.json").read_text())
    assert list(ids) == list(SPECIAL_TOKENS) and len(set(ids.values())) == 15
    generator = safetensor_weights(arts / "generator.out")
    assert generator["model.embed_tokens.weight"].shape[0] > base["model.embed_tokens.weight"].shape[0]

    # evaluation: the sets' shipped passages read as shipped, PubHealth as the fever task
    records = [json.loads(line) for f in (paper_folder / "data" / "eval_data").iterdir()
               for line in f.read_text().splitlines()]
    shipped = {r["question"]: [c["id"] for c in r.get("ctxs") or r["docs"]] for r in records}
    evaluated = artifact_rows(runs, "retrieve_eval.out")
    assert len(evaluated) == sum(SETS.values())
    for row in evaluated:
        question = row["question"].split("## Input:\n\n")[-1].split("\nA: ")[0]   # ARC: options
        assert [c["id"] for c in row["ctxs"]] == shipped[question]
    health = [r for r in evaluated if r["dataset"] == "health_claims_processed"]
    assert all(r["question"].startswith("Is the following claim true or false") for r in health)
    arc = [r for r in evaluated if r["dataset"] == "arc_challenge_processed"]
    assert all(r["question"].startswith("Choose the best answer") and "\nD: the south" in
               r["question"] and r["answers"] == ["B"] for r in arc)

    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    for name in ("eval_adaptive", "eval_always", "eval_none", "eval_top1"):
        by_set = metrics[name]["by_dataset"]
        assert {k: v["num_questions"] for k, v in by_set.items()} == SETS
        assert all("selfrag_match" in v and "retrieval_frequency" in v for v in by_set.values())
    assert metrics["eval_always"]["retrieval_frequency"] == 1.0
    # ASQA went through the long-form segment beam search and is scored with ALCE's metrics
    # (in always_retrieve: in adaptive mode ASQA also needs [Retrieval] in the pre-check, which
    # the barely trained tiny generator need not write; then it answers without retrieval)
    log = (runs / "latest" / "logs" / "infer_adaptive.log").read_text()
    assert f"{sum(SETS.values())} questions" in log
    log = (runs / "latest" / "logs" / "infer_always.log").read_text()
    assert f"{sum(SETS.values())} questions" in log and "(2 long form)" in log
    asqa = metrics["eval_adaptive"]["by_dataset"]["asqa_eval_gtr_top100"]
    assert "str_em" in asqa and "rouge_lsum" in asqa
    assert metrics["eval_none"]["retrieval_frequency"] == 0.0
