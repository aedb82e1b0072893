"""The whole DynamicRAG DAG (conf/dynamicrag/pipeline.yaml) on tiny random-init models, on CPU.

Same stages, same recipe structure as the demo and the paper recipe; only the models are tiny
and the synthetic knowledge base is small. Checks that every step runs, trained weights change,
metrics are gathered, and a second run is a no-op.
"""

from __future__ import annotations

import json
import shutil

import pytest

from stages.lib.testing.teach import safetensor_weights, teach
from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder
from tests.conftest import REPO, rag


WORDS = "Query: Retrieved Content: Topic: the river city founded year who what".split()
SELECTIONS = ["[1]", "[2]", "[1], [2]", "[3]", "None", "[2], [3]"]


def _selection_lessons(rng):
    """A random-init LM answers with noise, so every sampled trajectory of a question would look
    alike and earn the same reward: no preference pair, nothing for DPO to learn from. The tiny
    model is taught to answer any chat with one of a few selections, so sampled trajectories
    differ and the reward, pairs and DPO steps get real signal."""
    lessons = []
    for _ in range(6):
        user = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 200)))
        lessons.append(([{"role": "user", "content": user}], "", rng.choice(SELECTIONS)))
    return lessons


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    texts = ["Query: Retrieved Content: Topic: Content: None [1], [2], [3]",
             "What is the capital of Zorvia? Kelmaro was founded in 1852 by Ardan Velsh."]
    generator = tiny_causal_lm(root / "generator", texts)
    teach(generator, _selection_lessons, steps=120, lr=3e-3)
    return tiny_encoder(root / "encoder", texts), generator


def _tiny_recipe(tmp_path, encoder, generator, isolate: str = "auto"):
    """The DAG on the tiny models; ``isolate: never`` runs the shards in the test's process
    (about 5 s less per sharded step than starting two workers that import torch)."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf" / "dynamicrag", conf / "dynamicrag")
    (conf / "tiny.yaml").write_text(f"""
defaults:
  - dynamicrag/pipeline
  - _self_
ragline:
  executor: {{name: local, isolate: {isolate}}}
sources:
  encoder: {encoder}
  generator: {generator}
prompts:                  # the shipped prompt files (the test runs in a temporary directory)
  reranker: {REPO}/conf/prompts/dynamicrag/reranker.yaml
  generator: {REPO}/conf/prompts/dynamicrag/generator.yaml
  judge: {REPO}/conf/prompts/dynamicrag/judge.yaml
  rag: {REPO}/conf/prompts/common/rag.yaml
hw: {{shards: 2}}
retrieval: {{k: 4}}
dynamicrag: {{num_docs: 3}}
steps:
  load: {{num_entities: 8, num_train: 16, num_eval: 4}}
  rerank: {{inputs: {{model: null}}, method: has_answer}}
  label: {{max_len: 4, bucket_cap: 2, total_cap: null, n_sft: 4}}
  convert: {{max_generator_docs: 3}}
  sft: {{lora: true, lr: 1.0e-3, max_steps: 2, per_device_batch_size: 2, grad_accum: 1, max_length: 2048}}
  sample: {{n: 4, temperature: 1.0, max_new_tokens: 6, answer_max_new_tokens: 3,
            answer_temperature: 1.0}}
  dpo: {{lora: true, lr: 1.0e-3, max_steps: 2, per_device_batch_size: 2, grad_accum: 1, max_length: 2048}}
  infer: {{max_new_tokens: 4}}
  infer_top1: {{stage: infer_topk, inputs: {{questions: retrieve_eval, model: generator,
                                            prompt: generator_prompt}}, k: 1,
                max_new_tokens: 4}}
  eval_top1: {{stage: evaluate, inputs: {{predictions: infer_top1}}, name: top-1}}
""")
    return conf / "tiny.yaml"


@pytest.mark.slow   # every shard in a worker, twice: about 60 s; CI runs it (.ci/slow.sh)
def test_dynamicrag_dag_end_to_end_with_tiny_models(tmp_path, tiny_models, monkeypatch):
    encoder, generator = tiny_models
    recipe = _tiny_recipe(tmp_path, encoder, generator)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    assert rag("run", str(recipe), "--no-progress", runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["state"] == "ok"
    assert {s["state"] for s in status["steps"].values()} == {"done"}
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    assert set(metrics) == {"evaluate", "eval_top1"}
    assert metrics["evaluate"]["num_questions"] == 4
    assert "recall@1" in metrics["eval_top1"]  # synthetic questions carry gold passage ids

    base = safetensor_weights(generator)
    arts = runs / "latest" / "artifacts"
    sft = safetensor_weights(arts / "sft.out")
    dpo = safetensor_weights(arts / "dpo.out")
    changed = [k for k in base if k in sft and not (base[k] == sft[k]).all()]
    assert changed, "SFT did not change any weight"
    assert any(not (sft[k] == dpo[k]).all() for k in sft if k in dpo), "DPO did not change any weight"

    assert rag("run", str(recipe), "--no-progress", runs=runs) == 0
    again = json.loads((runs / "latest" / "status.json").read_text())
    assert {s["cache"] for s in again["steps"].values()} == {"hit"}


def test_own_data_through_the_three_data_overrides(tmp_path, tiny_models, monkeypatch):
    """A FlashRAG corpus and JSONL question sets with answers and gold ids, no code change."""
    from stages.lib.data.synth import make_synthkb, write_synthkb

    encoder, generator = tiny_models
    recipe = _tiny_recipe(tmp_path, encoder, generator, isolate="never")  # workers: 1st test
    files = write_synthkb(tmp_path / "data", make_synthkb(seed=3, num_entities=8, num_train=16,
                                                          num_eval=4), corpus_format="flashrag")
    assert '"contents"' in files["corpus"].read_text().splitlines()[0]
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    assert rag("run", str(recipe), f"data.corpus={files['corpus']}",
               f"data.train_questions={files['train']}", f"data.eval_questions={files['eval']}",
               "--no-progress", runs=runs) == 0
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    for name in ("evaluate", "eval_top1"):
        assert {"recall@1", "recall@5", "match_gold_in_pred", "exact_match"} <= set(metrics[name])
    assert metrics["evaluate"]["num_retrieval_questions"] == 4


def test_questions_that_ship_their_passages_need_no_index(tmp_path, tiny_models, monkeypatch):
    """``+dynamicrag=shipped_passages``: every question (as in the released training file and
    evaluation sets) carries ``ctxs``, so the recipe builds no index, reads no corpus and no
    encoder, and the rest of the DAG runs on the shipped passages."""
    from stages.lib.data.synth import make_synthkb, write_synthkb

    encoder, generator = tiny_models
    # its conf/dynamicrag/ has the variant; the first test runs the shards in workers
    recipe = _tiny_recipe(tmp_path, encoder, generator, isolate="never")
    files = write_synthkb(tmp_path / "data", make_synthkb(seed=3, num_entities=8, num_train=16,
                                                          num_eval=4), corpus_format="jsonl")
    corpus = [json.loads(line) for line in files["corpus"].read_text().splitlines()]
    for name in ("train", "eval"):
        rows = [json.loads(line) for line in files[name].read_text().splitlines()]
        for i, row in enumerate(rows):           # the gold passage and two others, shipped
            picked = row["gold"] + [corpus[(i + j) % len(corpus)]["id"] for j in (3, 7)]
            row["ctxs"] = [{"id": p["id"], "title": p.get("title", ""), "text": p["text"]}
                           for pid in picked for p in corpus if p["id"] == pid]
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    overrides = ["+dynamicrag=shipped_passages", f"data.corpus={tmp_path / 'no-such-corpus'}",
                 f"data.train_questions={files['train']}", f"data.eval_questions={files['eval']}",
                 f"sources.encoder={tmp_path / 'no-such-encoder'}"]
    assert rag("run", str(recipe), *overrides, "--no-progress", runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert "index" not in status["steps"] and {s["state"] for s in status["steps"].values()} == {"done"}
    import pyarrow.parquet as pq

    arts = runs / "latest" / "artifacts"
    parts = [f for shard in sorted((arts / "retrieve_eval.out").iterdir())
             for f in sorted(shard.glob("*.parquet"))]
    kept = [r for part in parts for r in pq.read_table(part).to_pylist()]
    assert [len(r["ctxs"]) for r in kept] == [3] * 4 and kept[0]["ctxs"][0]["id"] == kept[0]["gold"][0]
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    assert metrics["evaluate"]["num_questions"] == 4


def _cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


@pytest.mark.gpu   # bash .ci/gpu.sh: about a minute on one GPU (not yet run: no GPU lent so far)
@pytest.mark.skipif(_cuda() is None, reason="needs a CUDA device")
def test_dynamicrag_dag_on_one_gpu(tmp_path, tiny_models, monkeypatch):
    """The whole DAG with ``hw.gpus=1 hw.train_gpus=1``, as the paper recipe runs on a GPU node:
    two shards of each sharded step share the one GPU (one after the other), and SFT, DPO,
    sampling and inference run on CUDA, in bf16 where the GPU has it."""
    encoder, generator = tiny_models
    recipe = _tiny_recipe(tmp_path, encoder, generator, isolate="always")
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    assert rag("run", str(recipe), "hw.gpus=1", "hw.train_gpus=1", "--no-progress",
               runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert {s["state"] for s in status["steps"].values()} == {"done"}
    logs = runs / "latest" / "logs"
    precision = "bf16 autocast" if _cuda().cuda.is_bf16_supported() else "precision fp32"
    for step in ("sft", "dpo"):
        text = (logs / f"{step}.log").read_text()
        assert f"{step}: LoRA r=" in text and " on cuda " in text and precision in text, text
    samples = sorted(logs.glob("sample.shard-*.log"))
    assert len(samples) == 2
    for log in [*samples, logs / "infer_top1.log"]:     # the generator's load line
        text = log.read_text()
        assert "(cuda," in text or "with vLLM (CUDA" in text, text
    base = safetensor_weights(generator)
    sft = safetensor_weights(runs / "latest" / "artifacts" / "sft.out")
    assert any(k in sft and not (base[k] == sft[k]).all() for k in base)
