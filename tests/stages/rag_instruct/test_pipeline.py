"""The whole RAG-Instruct DAG (conf/rag_instruct/pipeline.yaml) on tiny random-init models:
exemplars with paradigm-fitting documents -> reference synthesis -> noise retrieval -> D* +
noise contexts -> wrapped chat rows -> SFT that changes the weights -> the untrained and the
trained model evaluated side by side; a rerun is a no-op, and a new document count recomputes
only what reads it. The released-exemplar variant plans without the exemplar retrieval."""

from __future__ import annotations

import json
import shutil

import pytest

from stages.lib.testing.teach import safetensor_weights
from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder
from tests.conftest import REPO, rag
from tests.stages.conftest import artifact_rows, run_recipe


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("rag_instruct_models")
    texts = ["### Instruction: Reference documents: Using the documents above, answer the",
             "following question ### Response: Paragraph Directive Context Task founded river"]
    return tiny_encoder(root / "encoder", texts), tiny_causal_lm(root / "lm", texts)


def _recipe(tmp_path, encoder, lm):
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf" / "rag_instruct", conf / "rag_instruct")
    shutil.copytree(REPO / "conf" / "prompts", conf / "prompts")
    (conf / "tiny.yaml").write_text(f"""
defaults:
  - rag_instruct/pipeline
  - _self_
sources: {{encoder: {encoder}, base: {lm}}}
retrieval: {{normalize: true, exemplar_k: 6, noise_k: 16, eval_k: 2}}
rag_instruct: {{n_docs: 3, noise_from: 8}}
steps:
  load: {{num_entities: 8, num_train: 10, num_eval: 4}}
  exemplars: {{select: has_answer}}
  synthesize: {{teacher: reference}}
  sft: {{lora: true, lr: 1.0e-3, max_steps: 2, per_device_batch_size: 2, grad_accum: 1, max_length: 2048}}
  infer_base: {{max_new_tokens: 4}}
  infer: {{max_new_tokens: 4}}
""")
    return conf / "tiny.yaml"


def test_rag_instruct_pipeline_with_tiny_models(tmp_path, tiny_models, monkeypatch):
    recipe = _recipe(tmp_path, *tiny_models)
    runs = run_recipe(recipe, tmp_path, monkeypatch)
    arts = runs / "latest" / "artifacts"

    grounded = artifact_rows(runs, "contexts.out")
    assert len(grounded) == 10 and {r["paradigm"] for r in grounded} == {
        "useless_doc", "single_doc_support", "multi_doc_support", "single_doc_answer",
        "multi_doc_answer"}
    for row in grounded:
        got = [c["id"] for c in row["ctxs"]]
        assert set(row["gold"]) <= set(got) and len(got) == max(3, len(row["gold"]))
    chat = artifact_rows(runs, "format.out")
    assert [r["messages"][1]["content"] for r in chat] == [r["answers"][0] for r in grounded]
    stats = json.loads((arts / "sft.out" / "training_stats.json").read_text())
    assert stats["steps"] == 2 and stats["losses"]
    base, tuned = safetensor_weights(tiny_models[1]), safetensor_weights(arts / "sft.out")
    assert any(not (base[k] == tuned[k]).all() for k in base if k in tuned), "sft changed nothing"

    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    for name, label in (("evaluate_base", "base model"), ("evaluate", "RAG-Instruct")):
        assert metrics[name]["label"] == label and metrics[name]["num_questions"] == 4
        assert 0.0 <= metrics[name]["accuracy"] <= 1.0

    assert rag("run", str(recipe), "--no-progress", runs=runs) == 0
    again = json.loads((runs / "latest" / "status.json").read_text())
    assert {s["cache"] for s in again["steps"].values()} == {"hit"}
    # more documents per example: synthesis and every retrieval are reused
    assert rag("run", str(recipe), "rag_instruct.n_docs=4", "--no-progress", runs=runs) == 0
    steps = json.loads((runs / "latest" / "status.json").read_text())["steps"]
    recomputed = {k for k, s in steps.items() if s["cache"] != "hit"}
    assert recomputed <= {"contexts", "format", "sft", "infer", "evaluate"}
    assert {"contexts", "format", "sft"} <= recomputed


def test_released_exemplars_variant_plans_without_exemplar_retrieval(tmp_path, tiny_models,
                                                                     monkeypatch, capsys):
    recipe = _recipe(tmp_path, *tiny_models)
    sample = tmp_path / "data.json"
    sample.write_text(json.dumps([{"context": [{"id": "kb00001", "title": "T", "text": "x"}],
                                   "source": "alpaca", "example_question": "Name a river.",
                                   "task": "Single-Doc Answer"}]))
    monkeypatch.chdir(tmp_path)
    assert rag("plan", str(recipe), "+rag_instruct=released_exemplars",
               f"data.exemplars={sample}", runs=tmp_path / "runs") == 0
    out = capsys.readouterr().out
    assert "exemplars" in out and "retrieve_exemplars" not in out
