"""The whole Reinforced-IR DAG (conf/reinforced_ir/pipeline.yaml), 2 rounds, on tiny random-init
models on CPU: every step runs, the generator's DPO and the retriever's training change weights,
each round is evaluated with and without augmentation, a rerun is a no-op, and `rounds=3`
computes round 3 only."""

from __future__ import annotations

import json
import shutil

import pytest
from tests.conftest import REPO, rag

from stages.lib.testing.teach import safetensor_weights
from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("rir_models")
    texts = ["Task: Query: For the query above, within this retrieval task, give a brief answer "
             "passage question 0 1",
             "Rank the passages below [0] > [1] > [2] identifiers relevant Kelmaro founded 1852"]
    return tiny_encoder(root / "encoder", texts), tiny_causal_lm(root / "generator", texts)


def _recipe(tmp_path, encoder, generator):
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf" / "reinforced_ir", conf / "reinforced_ir")
    shutil.copytree(REPO / "conf" / "prompts", conf / "prompts")
    (conf / "tiny.yaml").write_text(f"""
defaults:
  - reinforced_ir/pipeline
  - _self_
sources:
  base_generator: {generator}
  base_retriever: {encoder}
  miner: {encoder}
encoder: {{pooling: mean, normalize: true}}
miner_encoder: {{pooling: mean, normalize: true}}
steps:
  load: {{num_entities: 8, num_train: 4, num_eval: 6}}
  synthesize:
    inputs: {{model: base_generator}}
    llm: {{backend: transformers}}
    n_passages: 10
    quality_control: false
    temperature: 1.0
    query_max_tokens: 8
  augment_eval_base: {{max_tokens: 6, top_p: 1.0}}
repeat:
  round:
    steps:
      augment: {{n: 3, temperature: 1.0, top_p: 1.0, max_tokens: 6}}
      feedback: {{margin: 1.0, require_gain: false}}
      generator: {{lora: true, lr: 1.0e-3, max_steps: 2, per_device_batch_size: 2, grad_accum: 1, max_length: 512}}
      augment_greedy: {{max_tokens: 6, top_p: 1.0}}
      mine: {{top_k: 16, pool: 6, keep: 3, fallback_lo: 2, fallback_hi: 16}}
      distill: {{group_size: 4, max_passage_chars: 60, max_tokens: 8}}
      retriever: {{batch_size: 2, group_size: 4, lr: 1.0e-3, max_steps: 3, logging_steps: 1}}
      augment_eval: {{max_tokens: 6, top_p: 1.0}}
""")
    return conf / "tiny.yaml"


@pytest.mark.slow   # about 15 s on 2 cores; CI runs it (.ci/slow.sh)
def test_reinforced_ir_two_rounds_with_tiny_models(tmp_path, tiny_models, monkeypatch):
    encoder, generator = tiny_models
    recipe = _recipe(tmp_path, encoder, generator)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    assert rag("run", str(recipe), "--no-progress", runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["state"] == "ok"
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    for name in ("eval_base", "eval_base_aug", "eval_1", "eval_aug_1", "eval_2", "eval_aug_2"):
        assert 0.0 <= metrics[name]["ndcg@10"] <= 1.0 and metrics[name]["queries"] == 6
    assert metrics["eval_aug_1"]["augmented"] is True and metrics["eval_1"]["augmented"] is False

    arts = runs / "latest" / "artifacts"
    base_enc, r1, r2 = (safetensor_weights(p) for p in (encoder, arts / "retriever_1.out",
                                                         arts / "retriever_2.out"))
    assert any(not (base_enc[k] == r1[k]).all() for k in base_enc if k in r1), "round 1 retriever unchanged"
    assert any(not (r1[k] == r2[k]).all() for k in r1 if k in r2), "round 2 retriever unchanged"
    g0, g1 = safetensor_weights(generator), safetensor_weights(arts / "generator_1.out")
    assert any(not (g0[k] == g1[k]).all() for k in g0 if k in g1), "DPO did not change the generator"
    stats = json.loads((arts / "retriever_1.out" / "training_stats.json").read_text())
    assert len(stats["history"]) == 3 and all(h["loss"] > 0 for h in stats["history"])

    assert rag("run", str(recipe), "--no-progress", runs=runs) == 0
    again = json.loads((runs / "latest" / "status.json").read_text())
    assert {s["cache"] for s in again["steps"].values()} == {"hit"}

    assert rag("run", str(recipe), "rounds=3", "--no-progress", runs=runs) == 0
    third = json.loads((runs / "latest" / "status.json").read_text())
    computed = sorted(n for n, s in third["steps"].items() if s["cache"] != "hit")
    assert computed and all(n.endswith("_3") for n in computed), computed


def _beir(folder):
    (folder / "qrels").mkdir(parents=True)
    docs = [("d1", "Velmora", "Velmora was founded in 1852 by Ardan Velsh."),
            ("d2", "Kelmaro", "Kelmaro is a river city with a famous bridge."),
            ("d3", "Zorvia", "The capital of Zorvia is Tessin.")]
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs))
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "Who founded Velmora?"}) + "\n"
        + json.dumps({"_id": "q2", "text": "What is the capital of Zorvia?"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return folder


def test_a_beir_folder_is_one_override(tmp_path, tiny_models, monkeypatch):
    encoder, generator = tiny_models
    recipe = _recipe(tmp_path, encoder, generator)
    beir = _beir(tmp_path / "scifact")
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    for step in ("load", "index_base", "eval_base"):
        assert rag("run", str(recipe), f"data.beir={beir}", "--only", step, "--no-progress", runs=runs) == 0
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    assert metrics["eval_base"]["queries"] == 2
    assert 0.0 <= metrics["eval_base"]["recall@10"] <= 1.0
    assert metrics["eval_base"]["recall@10"] == 1.0     # 3 passages, top 10: every gold is found
    # no train questions is this recipe's design (synthesize makes its own): not a warning
    load_log = next(runs.rglob("logs/load.log")).read_text()
    assert "train: no file wired, and the recipe reads none" in load_log
    assert "WARNING" not in load_log


def test_a_folder_that_is_not_beir_is_refused_with_the_missing_file(tmp_path, tiny_models, monkeypatch):
    encoder, generator = tiny_models
    recipe = _recipe(tmp_path, encoder, generator)
    (tmp_path / "notbeir").mkdir()
    (tmp_path / "notbeir" / "corpus.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    code = rag("run", str(recipe), f"data.beir={tmp_path / 'notbeir'}", "--only", "load",
               "--no-progress", runs=runs)
    assert code == 2   # bad input: fixing it, not rerunning, is what helps
    log = "\n".join(p.read_text() for p in (runs / "latest").rglob("*.log"))
    assert "is a folder but not a BEIR folder" in log and "queries.jsonl is missing" in log
