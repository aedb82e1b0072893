"""The whole Self-RAG DAG (conf/selfrag/pipeline.yaml) on tiny random-init models: reference
teacher -> critic SFT -> critic labelling with per-sentence retrieval -> the generator's training
rows with reflection tokens -> generator SFT with the 15 special tokens -> inference with no /
always / adaptive retrieval and a top-1 RAG baseline -> Self-RAG evaluation; a rerun is a no-op."""

from __future__ import annotations

import json
import shutil

import pytest
from tests.conftest import REPO, rag

from stages.lib.testing.teach import teach
from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder


CRITIC_ANSWERS = {"retrieval": "[Retrieval]", "multi_retrieval": "[Retrieval]",
                  "relevance": "[Relevant]", "support": "[Fully supported]",
                  "utility": "[Utility:5]"}


def _critic_lessons():
    """A random-init LM says noise, which reads as [No Retrieval] / unreadable everywhere: the
    labelling half would have nothing to do. The tiny model is taught to give each critic prompt
    file's expected kind of answer, so the wiring is exercised for real."""
    from stages.lib.prompts import load_prompt, messages

    fields = {"instruction": "Who founded Velmora?", "output": "Ardan Velsh", "preceding": "None",
              "evidence": "Velmora\nVelmora was founded by Ardan Velsh.", "sentence": "It is old."}
    prompts = {k: load_prompt(REPO / "conf" / "prompts" / "selfrag" / f"{k}.yaml")
               for k in CRITIC_ANSWERS}
    vocab = "The river city was founded in 1852 by a mill and counts members Havenen Brook".split()

    def lessons(rng):
        out = []
        for kind in sorted(CRITIC_ANSWERS):
            words = rng.choice(["What is 7 plus 5?", "Who founded Kelmaro?", "Write revlis."])
            evidence = " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 90)))
            conv = messages(prompts[kind], **{**fields, "instruction": words, "evidence": evidence})
            out.append((conv, "", CRITIC_ANSWERS[kind]))
        return out

    return lessons


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("selfrag_models")
    texts = ["[Retrieval] [No Retrieval] [Relevant] [Irrelevant] [Fully supported] [Utility:5]",
             "Decide whether reading documents Task instruction: Evidence: Output: What is plus"]
    # (the critic SFT below runs at a tiny lr so that this behaviour survives its two steps)
    critic = tiny_causal_lm(root / "lm", texts)
    teach(critic, _critic_lessons(), steps=200, lr=3e-3)
    return tiny_encoder(root / "encoder", texts), critic


@pytest.mark.slow   # about 30 s with its models on 2 cores; CI runs it (.ci/slow.sh)
def test_selfrag_data_half_with_tiny_models(tmp_path, tiny_models, monkeypatch):
    encoder, lm = tiny_models
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf" / "selfrag", conf / "selfrag")
    shutil.copytree(REPO / "conf" / "prompts", conf / "prompts")
    (conf / "tiny.yaml").write_text(f"""
defaults:
  - selfrag/pipeline
  - _self_
sources: {{encoder: {encoder}, critic_base: {lm}, generator_base: {lm}}}
retrieval: {{k: 3, normalize: true}}
selfrag: {{ndocs: 2, max_new_tokens: 6, eval_no_retrieval: 2}}
steps:
  load: {{num_entities: 8, num_train: 8, num_eval: 4}}
  instructions: {{no_retrieval: 4}}
  judge: {{teacher: reference, dev_size: 4}}
  critic: {{lora: true, lr: 1.0e-7, max_steps: 2, per_device_batch_size: 2, grad_accum: 1, max_length: 512}}
  split: {{max_tokens: 48}}
  label: {{top_n: 2, max_tokens: 48}}
  generator: {{lr: 1.0e-7, max_steps: 2, per_device_batch_size: 2, grad_accum: 1, max_length: 512}}
""")
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    assert rag("run", str(conf / "tiny.yaml"), "--no-progress", runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["state"] == "ok"
    import pyarrow.parquet as pq

    arts = runs / "latest" / "artifacts"
    judged = pq.read_table(next((arts / "judge.train").glob("*.parquet"))).to_pylist()
    tasks = {r["task"] for r in judged}
    assert {"retrieval", "utility", "support"} <= tasks
    answers = {r["messages"][-1]["content"] for r in judged}
    assert "[No Retrieval]" in answers and "[Retrieval]" in answers    # the no-retrieval items
    items = pq.read_table(next((arts / "split.items").glob("*.parquet"))).to_pylist()
    assert len(items) == 12 and all(r["sentences"] for r in items)
    assert any(r["decision"] == "[Retrieval]" for r in items)
    targets = pq.read_table(next((arts / "label.out").glob("*.parquet"))).to_pylist()
    assert targets and all(r["messages"][1]["content"].endswith("]") for r in targets)
    assert any("<paragraph>" in r["messages"][1]["content"] for r in targets)
    _check_generator_and_evaluation(runs, arts)
    assert rag("run", str(conf / "tiny.yaml"), "--no-progress", runs=runs) == 0
    again = json.loads((runs / "latest" / "status.json").read_text())
    assert {s["cache"] for s in again["steps"].values()} == {"hit"}
    # a new threshold recomputes adaptive inference and its evaluation only
    assert rag("run", str(conf / "tiny.yaml"), "selfrag.threshold=0.9", "--no-progress",
               runs=runs) == 0
    swept = json.loads((runs / "latest" / "status.json").read_text())["steps"]
    recomputed = {k for k, s in swept.items() if s["cache"] != "hit"}
    assert recomputed == {"infer_adaptive", "eval_adaptive"}


def _check_generator_and_evaluation(runs, arts):
    """The generator checkpoint saves the reflection tokens' ids; every evaluation has metrics."""
    from transformers import AutoTokenizer

    from stages.selfrag.tokens import SPECIAL_TOKENS

    ids = json.loads((arts / "generator.out" / "special_tokens.json").read_text())
    assert list(ids) == list(SPECIAL_TOKENS) and len(set(ids.values())) == 15
    tok = AutoTokenizer.from_pretrained(arts / "generator.out")
    assert all(tok.convert_tokens_to_ids(t) == i for t, i in ids.items())
    assert all(len(tok(t, add_special_tokens=False)["input_ids"]) == 1 for t in SPECIAL_TOKENS)
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    assert {"eval_adaptive", "eval_always", "eval_none", "eval_top1"} <= set(metrics)
    for name in ("eval_adaptive", "eval_always", "eval_none", "eval_top1"):
        assert metrics[name]["num_questions"] == 6          # 4 loaded + 2 that need no documents
        assert 0.0 <= metrics[name]["selfrag_match"] <= 1.0
    assert metrics["eval_always"]["retrieval_frequency"] == 1.0
    assert metrics["eval_none"]["retrieval_frequency"] == 0.0
    assert metrics["eval_top1"]["retrieval_frequency"] == 1.0
    assert metrics["eval_adaptive"]["label"] == "Self-RAG adaptive retrieval"
