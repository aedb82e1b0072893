"""The DynamicRAG paper recipe (conf/dynamicrag_llama3.yaml) run as a user would try it on a
laptop before booking the cluster: ``rag run conf/dynamicrag_llama3.yaml`` from a folder whose
``data/`` and ``models/`` hold tiny stand-ins at the recipe's own paths, with only the overrides
a CPU and tiny models force. Every other paper setting is kept: the five-component reward at
0.2 each with the LLM judge asked through an OpenAI-compatible endpoint (the repository's test
server, ``tests/stages/lib/endpoint/chat_server.py``, serving a tiny model as ``gpt-4o``), the
original's ROUGE-L, sampling at T=0.4, the Alpaca data in SFT (``data.alpaca``), an evaluation
folder of several sets shipping their passages (ASQA in ALCE's shape, per-set metrics and their
macro average), training items with ``retrieved_question`` (some shipping ``ctxs``), monoT5
expert labels, and the seeded T=0.4 selection at inference.

BERTScore: the real bert-score package (the ``dev`` and ``paper`` extras) on a tiny local
encoder.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import rag
from tests.stages.conftest import artifact_rows
from tests.stages.lib.endpoint.conftest import start_server

pytestmark = pytest.mark.paper   # about 20-40 s each: CI runs them (pytest -m paper)

SETS = {"nq_test": 3, "triviaqa_test": 2, "fever_dev": 2, "eli5_eval_bm25_top100": 2,
        "asqa_eval_gtr_top100": 2}
TOPICS = [("Kelmaro", "Kelmaro was founded in 1852 by Ardan Velsh."),
          ("Zorvia", "The capital of Zorvia is Velmora."),
          ("Havenen", "Havenen Brook is a river in the north."),
          ("Ardan Velsh", "Ardan Velsh was a miller born in 1801.")]
QA = [("When was Kelmaro founded?", ["1852"]), ("What is the capital of Zorvia?", ["Velmora"]),
      ("Who founded Kelmaro?", ["Ardan Velsh"]), ("Where is Havenen Brook?", ["the north"])]
ALPACA = [{"instruction": "Give three tips for staying healthy.", "input": "",
           "output": "Eat well, sleep, move.", "system": "You are a helpful assistant."},
          {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5",
           "system": "You are a helpful assistant."}]

# What a CPU and tiny models force, and nothing else (the test's paths and endpoint are added).
CPU = ["hw.gpus=0", "hw.train_gpus=0", "hw.shards=1"]       # no GPU (DeepSpeed is then unused)
SIZES = ["steps.label.bucket_cap=2", "steps.label.n_sft=4",
         "+steps.sft.max_steps=2", "+steps.dpo.max_steps=2",
         "dynamicrag.num_docs=3",           # a tiny model taught on 1-3 passages, not 40
         "steps.sample.max_new_tokens=8", "steps.sample.answer_max_new_tokens=8",
         "steps.infer.max_new_tokens=8"]


def _lessons():
    """A random-init LM answers every prompt alike: no two trajectories would differ and the
    reward would have nothing to score. The tiny model is taught the three roles' shapes: the
    reranker picks one of a few selections, the generator answers "Velmora" from passages and
    "1852" from none, and the judge replies "Score: N"."""
    from stages.dynamicrag.prompts import SHIPPED, reranker_messages, shipped_prompts
    from stages.lib.prompts import generator_messages, load_prompt, messages

    roles, judge = shipped_prompts(), load_prompt(SHIPPED / "judge.yaml")
    questions = [q for q, _ in QA[:2]]

    def lessons(rng):
        docs = [dict(zip(("title", "text"), rng.choice(TOPICS[:3])))
                for _ in range(rng.randint(1, 3))]
        q, some = rng.choice(questions), docs[:rng.choice([0, 1])]
        return [(reranker_messages(roles.reranker, q, docs), "",
                 rng.choice(["[1]", "[2]", "[1], [2]", "None"])),
                (generator_messages(roles.generator, q, some, rng.choice(["nq", "fever", "eli5"])),
                 "", "Velmora" if some else "1852"),
                (messages(judge, question=q, gold="Velmora", response=rng.choice(["Velmora", "1852"])),
                 "", rng.choice(["Score: 60", "Score: 80"]))]

    return lessons


def _ctxs(offset: int, n: int = 3) -> list[dict]:
    return [{"id": str(1 + (offset + j) % 12), "title": TOPICS[(offset + j) % 4][0],
             "text": TOPICS[(offset + j) % 4][1]} for j in range(n)]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _paper_data(data):
    """Tiny files in the seeds' formats at the recipe's paths (SEEDS.md §1.2, §1.5)."""
    (data / "eval_data").mkdir(parents=True)
    with open(data / "psgs_w100.tsv", "w") as f:      # DPR: id, text, title, with a header
        f.write("id\ttext\ttitle\n")
        for i in range(12):
            f.write(f"{i + 1}\t{TOPICS[i % 4][1]} Passage {i}.\t{TOPICS[i % 4][0]}\n")
    train = []                                        # the released training file's shape
    for i in range(24):
        q, a = QA[i % 4]
        row = {"id": f"{['nq', 'tc', 'hotpotqa', 'fever', 'eli5', 'asqa'][i % 6]}_{i}",
               "question": q, "retrieved_question": q.lower().rstrip("?"),
               "answer": a if i % 2 else a[0]}
        if i % 3 == 0:
            row["ctxs"] = _ctxs(i, 6)
        train.append(row)
    _jsonl(data / "rag_training_data.jsonl", train)
    ev = data / "eval_data"
    _jsonl(ev / "nq_test.jsonl", [{"id": str(i), "question": q, "answers": a, "ctxs": _ctxs(i)}
                                  for i, (q, a) in enumerate(QA[:3])])
    _jsonl(ev / "triviaqa_test.jsonl", [{"id": str(i), "question": q, "answers": a,
                                         "ctxs": _ctxs(i + 1)} for i, (q, a) in enumerate(QA[2:])])
    _jsonl(ev / "fever_dev.jsonl", [
        {"id": "f0", "question": "Kelmaro was founded in 1852.", "answers": ["SUPPORTS"],
         "ctxs": _ctxs(0)},
        {"id": "f1", "question": "Zorvia has no capital.", "answers": ["REFUTES"], "ctxs": _ctxs(1)}])
    _jsonl(ev / "eli5_eval_bm25_top100.jsonl", [
        {"id": "e0", "question": "Why do rivers flow north?",
         "answer": "Because the land slopes that way.", "docs": _ctxs(2)},
        {"id": "e1", "question": "How are cities founded?",
         "answer": "People settle near a mill.", "docs": _ctxs(3)}])
    _jsonl(ev / "asqa_eval_gtr_top100.jsonl", [          # ALCE's ASQA: qa_pairs, docs
        {"id": f"a{i}", "question": q, "qa_pairs": [{"question": q, "short_answers": a}],
         "annotations": [{"long_answer": f"The answer is {a[0]}."}], "docs": _ctxs(i)}
        for i, (q, a) in enumerate(QA[:2])])
    (data / "alpaca_data_cleaned_system.json").write_text(json.dumps(ALPACA))


@pytest.fixture(scope="module")
def paper_folder(tmp_path_factory):
    """A folder laid out as the recipe expects: data/ and models/ with tiny stand-ins."""
    from stages.lib.testing.teach import teach
    from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder, tiny_seq2seq

    root = tmp_path_factory.mktemp("paper_dynamicrag")
    texts = ["Query: Retrieved Content: Topic: Content: None [1], [2] Score: 80 Velmora 1852"]
    models = root / "models"
    generator = tiny_causal_lm(models / "llama3_8b", texts)
    teach(generator, _lessons(), steps=150, lr=3e-3)
    tiny_encoder(models / "contriever-msmarco", texts)
    tiny_seq2seq(models / "monot5-base-msmarco", texts)
    bertscore = tiny_encoder(models / "tiny-bert", texts)
    config = json.loads((bertscore / "tokenizer_config.json").read_text())
    config["model_max_length"] = 512      # bert-score truncates to it (roberta-large's 512)
    (bertscore / "tokenizer_config.json").write_text(json.dumps(config))
    _paper_data(root / "data")
    return root


@pytest.fixture(scope="module")
def judge_server(paper_folder, tmp_path_factory):
    """The OpenAI-compatible test server answering as gpt-4o with the taught tiny model."""
    proc, server = start_server(paper_folder / "models" / "llama3_8b",
                                tmp_path_factory.mktemp("judge_server"), "sk-tiny-judge", "gpt-4o")
    yield server
    proc.terminate()
    proc.wait(timeout=30)


def test_dynamicrag_paper_recipe_on_cpu_with_tiny_models(paper_folder, judge_server, tmp_path,
                                                         monkeypatch, one_torch_thread):
    from tests.conftest import REPO

    pytest.importorskip("bert_score", reason="the reward's BERTScore: pip install -e '.[dev]'")
    monkeypatch.chdir(paper_folder)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tiny-judge")
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    overrides = CPU + SIZES + [
        "data.alpaca=data/alpaca_data_cleaned_system.json",     # the paper's file, not shipped
        f"steps.reward.judge.base_url={judge_server.base_url}",  # GPT-4o's stand-in
        "steps.reward.bertscore_model=models/tiny-bert",        # no roberta-large offline
        "steps.reward.bertscore_rescale=false"]                 # no baseline for a tiny model
    assert rag("run", str(REPO / "conf" / "dynamicrag_llama3.yaml"), *overrides, "--no-progress",
               runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["state"] == "ok" and {s["state"] for s in status["steps"].values()} == {"done"}
    arts = runs / "latest" / "artifacts"

    # the Alpaca rows reached SFT, beside the reranker BC and generator rows
    sft_rows = artifact_rows(runs, "convert.out")
    assert {r["task"] for r in sft_rows} == {"reranker", "generator", "extra"}
    alpaca = [r for r in sft_rows if r["task"] == "extra"]
    assert sorted(r["messages"][-1]["content"] for r in alpaca) == sorted(a["output"] for a in ALPACA)
    assert alpaca[0]["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    stats = json.loads((arts / "sft.out" / "training_stats.json").read_text())
    assert stats["tasks"]["extra"] == len(ALPACA)

    # training items without passages were searched; those that ship them kept them
    retrieved = {r["id"]: r for r in artifact_rows(runs, "retrieve_train.out")}
    assert len(retrieved["nq_0"]["ctxs"]) == 6 and len(retrieved["tc_1"]["ctxs"]) == 12

    # the reward used all five components, the judge through the endpoint
    scored = [r for r in artifact_rows(runs, "reward.out") if any(r["reward_parts"])]
    assert scored, "no question had a preference signal"
    parts = [dict(p) for r in scored for p in r["reward_parts"]]      # a map column: pairs
    assert all(set(p) == {"bertscore", "rouge_l", "containment_em", "length_penalty", "judge"}
               for p in parts)
    assert any(p["judge"] > 0 for p in parts) and any(p["bertscore"] > 0 for p in parts)
    assert judge_server.stats()["served"] > 0
    assert artifact_rows(runs, "pairs.out"), "no preference pair reached DPO"

    # one metrics block per evaluation set (their own metrics), and the macro average
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())["evaluate"]
    assert {k: v["num_questions"] for k, v in metrics["by_dataset"].items()} == SETS
    assert metrics["macro"]["num_sets"] == len(SETS)
    by_set = metrics["by_dataset"]
    assert "first_char_accuracy" in by_set["fever_dev"] and "exact_match" not in by_set["fever_dev"]
    assert {"rouge_l_pltrdy", "rouge_l"} <= set(by_set["eli5_eval_bm25_top100"])
    assert {"exact_match", "rouge_l_pltrdy"} <= set(by_set["asqa_eval_gtr_top100"])
    assert "exact_match" in by_set["nq_test"]
    predictions = artifact_rows(runs, "infer.out")
    assert len(predictions) == sum(SETS.values())
    asqa = [p for p in predictions if p["dataset"] == "asqa_eval_gtr_top100"]
    assert asqa and all(p["answers"] for p in asqa)          # golds from qa_pairs
