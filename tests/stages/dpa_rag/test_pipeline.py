"""The whole DPA-RAG DAG (conf/dpa_rag/pipeline.yaml) on tiny random-init models: five query
augmentations by a local LM -> the NLI filter -> retrieval -> preference mining by the reader ->
the reranker's rows -> reranker training (three losses, MGDA-UB) -> the pre-aligned task -> its
SFT -> the reranker's top documents for the SFT rows -> SFT from the pre-aligned weights -> the
three evaluation rows; a rerun is a no-op, and a new reader SFT setting recomputes only what
reads it. The no-augmentation variant plans without the augmenting and NLI steps.

A random-init reader says noise, which is wrong with or without a document: there would be no
aligned or unaligned knowledge to train on. So the tiny reader is taught one rule first: with
no document it says "alpha", with a document it says the colour word the document holds. On a
corpus of "alpha" and "beta" passages, a question whose gold is "beta" then finds beta documents
aligned and alpha ones no help; one whose gold is "alpha" finds beta documents unaligned."""

from __future__ import annotations

import json
import shutil

import pytest

from stages.lib.testing.teach import safetensor_weights, teach
from stages.lib.testing.tiny import tiny_causal_lm, tiny_classifier, tiny_encoder
from tests.conftest import REPO, rag
from tests.stages.conftest import artifact_rows, run_recipe

COLOURS = ("alpha", "beta")
PASSAGES = [{"id": f"p{i}", "title": f"Place {i}", "text": f"Place {i} is {COLOURS[i % 2]}."}
            for i in range(24)]
TRAIN = [{"id": f"t{i}", "question": f"Which colour is place {i}?",
          "answers": [COLOURS[(i // 2) % 2]]} for i in range(8)]
EVAL = [{"id": f"e{i}", "question": f"Which colour is place {i + 10}?",
         "answers": [COLOURS[i % 2]]} for i in range(4)]


def _reader_lessons():
    from stages.lib.prompts import generator_messages, load_prompt

    reader = load_prompt(REPO / "conf" / "prompts" / "common" / "rag.yaml")

    def lessons(rng):
        out = []
        for _ in range(4):
            question = rng.choice(TRAIN + EVAL)["question"]
            docs = rng.sample(PASSAGES, rng.choice([0, 1, 1, 1]))
            answer = docs[0]["text"].split()[-1].rstrip(".") if docs else "alpha"
            out.append((generator_messages(reader, question, docs, "nq"), "", answer))
        return out

    return lessons


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("dpa_rag_models")
    texts = [p["text"] for p in PASSAGES] + [q["question"] for q in TRAIN]
    texts += ["Answer the question using the passages below. Question: Answer: Yes No",
              "Rephrase complexity decompose constraint SPARQL SELECT WHERE document helps"]
    reader = tiny_causal_lm(root / "lm", texts)
    teach(reader, _reader_lessons(), steps=400, lr=3e-3)
    return (tiny_encoder(root / "encoder", texts), reader,
            tiny_classifier(root / "nli", texts))


def _recipe(tmp_path, encoder, lm, nli):
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf" / "dpa_rag", conf / "dpa_rag")
    shutil.copytree(REPO / "conf" / "prompts", conf / "prompts")
    data = tmp_path / "data"
    data.mkdir()
    for name, rows in (("corpus", PASSAGES), ("train", TRAIN), ("eval", EVAL)):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (conf / "tiny.yaml").write_text(f"""
defaults:
  - dpa_rag/pipeline
  - _self_
data: {{corpus: {data}/corpus.jsonl, train_questions: {data}/train.jsonl,
        eval_questions: {data}/eval.jsonl}}
sources: {{encoder: {encoder}, base: {lm}, reranker_base: {encoder}, nli: {nli}}}
retrieval: {{pooling: mean, normalize: true, k: 8, top_k: 2}}
steps:
  augment:
    inputs: {{model: base}}
    llm: {{backend: transformers, model: ""}}
    max_tokens: 8
  preference: {{max_new_tokens: 4}}
  reranker_data: {{valid_fraction: 0.25}}
  train_reranker: {{epochs: 1, batch_size: 2, max_length: 64}}
  sft_prealign: {{lora: true, lr: 1.0e-3, max_steps: 2, per_device_batch_size: 2, grad_accum: 1,
                  max_length: 512}}
  sft: {{lora: true, lr: 1.0e-3, max_steps: 2, per_device_batch_size: 2, grad_accum: 1,
         max_length: 512}}
  infer_base: {{max_new_tokens: 4}}
  infer_reranked: {{max_new_tokens: 4}}
  infer_tuned: {{max_new_tokens: 4}}
  infer: {{max_new_tokens: 4}}
""")
    return conf / "tiny.yaml"


def test_dpa_rag_pipeline_with_tiny_models(tmp_path, tiny_models, monkeypatch):
    recipe = _recipe(tmp_path, *tiny_models)
    runs = run_recipe(recipe, tmp_path, monkeypatch)
    arts = runs / "latest" / "artifacts"

    augmented = artifact_rows(runs, "augment.out")
    assert len(augmented) == 8 * 6 and {r["kind"] for r in augmented} == {
        "original", "rephrase", "complexity", "decompose", "constraint", "sparql"}
    kept = artifact_rows(runs, "nli_filter.out")
    assert {r["id"] for r in TRAIN} <= {r["id"] for r in kept}   # originals always kept

    knowledge = artifact_rows(runs, "preference.out")
    outcomes = {r["category"] for r in knowledge if r["kind"] == "original"}
    assert {"aligned", "unaligned"} <= outcomes, "the taught reader should find both"
    data = artifact_rows(runs, "reranker_data.out")
    assert data and {r["split"] for r in data} == {"train", "valid"}
    gold = {r["id"]: r["answers"][0] for r in knowledge}
    right = [all(d["text"].endswith(gold[r["id"]] + ".") for d in r["positive"]) and
             not any(d["text"].endswith(gold[r["id"]] + ".") for d in r["negative"]) for r in data]
    assert sum(right) >= 0.8 * len(right), "positives hold the gold colour, negatives do not"
    stats = json.loads((arts / "train_reranker.out" / "training_stats.json").read_text())
    assert stats["losses"] == ["cls", "rank", "scl"] and stats["history"]
    assert all(abs(sum(h["alphas"].values()) - 1) < 1e-5 for h in stats["history"])

    prealigned = artifact_rows(runs, "prealign.out")
    assert {r["messages"][-1]["content"] for r in prealigned} == {"Yes", "No"}
    reranked = artifact_rows(runs, "rerank_eval.out")
    assert all(len(r["ctxs"]) == 2 and "rerank_score" in r["ctxs"][0] for r in reranked)
    base = safetensor_weights(tiny_models[1])
    for step in ("sft_prealign", "sft"):
        tuned = safetensor_weights(arts / f"{step}.out")
        assert any(not (base[k] == tuned[k]).all() for k in base if k in tuned), step

    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    for name in ("evaluate_base", "evaluate_reranked", "evaluate_tuned", "evaluate"):
        assert metrics[name]["num_questions"] == 4
        assert 0.0 <= metrics[name]["match_gold_in_pred"] <= 1.0

    assert rag("run", str(recipe), "--no-progress", runs=runs) == 0
    again = json.loads((runs / "latest" / "status.json").read_text())
    assert {s["cache"] for s in again["steps"].values()} == {"hit"}
    # a new SFT learning rate: mining, the reranker and the pre-aligned stage are reused
    assert rag("run", str(recipe), "steps.sft.lr=2e-3", "--no-progress", runs=runs) == 0
    steps = json.loads((runs / "latest" / "status.json").read_text())["steps"]
    recomputed = {k for k, s in steps.items() if s["cache"] != "hit"}
    assert {"sft", "infer", "infer_tuned"} <= recomputed   # evaluations: cut off when their
    assert recomputed <= {"sft", "infer", "infer_tuned", "evaluate", "evaluate_tuned"}  # input
                                                                        # bytes are unchanged


def test_no_augmentation_variant_plans_without_the_augmenting_steps(tmp_path, tiny_models,
                                                                    monkeypatch, capsys):
    recipe = _recipe(tmp_path, *tiny_models)
    monkeypatch.chdir(tmp_path)
    assert rag("plan", str(recipe), "+dpa_rag=no_augmentation", runs=tmp_path / "runs") == 0
    steps = {line.split()[1] for line in capsys.readouterr().out.splitlines()
             if line.startswith("│")}
    assert "preference" in steps and not steps & {"augment", "nli_filter"}
