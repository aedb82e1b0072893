"""The DPA-RAG *paper* recipe (conf/dpa_rag_llama3.yaml) run as a researcher would on a laptop
before booking the cluster: `rag run` on the shipped file with overrides for what a CPU and tiny
models force, every other paper setting kept: five query augmentations by the augmenting LLM
(gpt-3.5-turbo in the paper), the NLI filter, DPR's dual encoder, preference mining by exact
match, the reranker's three losses with MGDA-UB weights over 10 epochs and best-valid-F1
selection, the pre-aligned stage then the SFT with the paper's optimiser settings (linear,
20 warmup steps, Adam beta2 0.95, weight decay 0.1), top-3 reading (top-2 for WebQSP), 20 new
tokens, Hits@1 and F1.

The augmenting LLM is a real OpenAI-compatible HTTP server on 127.0.0.1
(tests/stages/lib/endpoint/chat_server.py, a tiny random-init model). The reader is taught to
answer from the document it is shown (tests/stages/dpa_rag/conftest.py), so aligned and
unaligned knowledge both exist.
"""

from __future__ import annotations

import json

import pytest
from tests.conftest import run_paper_recipe
from tests.stages.conftest import artifact_rows
from tests.stages.dpa_rag.conftest import EVAL, PASSAGES, TRAIN, _reader_lessons
from tests.stages.lib.endpoint.conftest import SERVER_KEY, start_server

from stages.lib.testing.teach import safetensor_weights, teach
from stages.lib.testing.tiny import tiny_causal_lm, tiny_classifier, tiny_encoder

pytestmark = pytest.mark.paper   # about 20-40 s each: CI runs them (pytest -m paper)

WEBQSP = [{"id": f"w{i}", "question": f"Which colour is place {i + 14}?",
           "answers": [("alpha", "beta")[i % 2]]} for i in range(2)]


def _data(folder):
    folder.mkdir()
    (folder / "eval").mkdir()
    files = {"corpus.jsonl": PASSAGES, "train.jsonl": TRAIN, "eval/nq.jsonl": EVAL,
             "eval/webqsp.jsonl": WEBQSP}
    for name, rows in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """One run of the paper recipe on tiny models; returns (runs dir, reader, reranker base)."""
    root = tmp_path_factory.mktemp("dpa_paper")
    texts = [p["text"] for p in PASSAGES] + [q["question"] for q in TRAIN]
    texts += ["Answer the question using the passages below. Question: Answer: Yes No",
              "Rephrase complexity decompose constraint SPARQL SELECT WHERE document helps"]
    reader = tiny_causal_lm(root / "reader", texts)
    teach(reader, _reader_lessons(), steps=400, lr=3e-3)
    encoder, query_encoder = tiny_encoder(root / "ctx", texts), tiny_encoder(root / "q", texts, seed=1)
    reranker, nli = tiny_encoder(root / "reranker", texts), tiny_classifier(root / "nli", texts)
    data = _data(root / "data")
    proc, server = start_server(tiny_causal_lm(root / "augmenter", texts), root, SERVER_KEY)
    overrides = [
        f"data.corpus={data}/corpus.jsonl", f"data.train_questions={data}/train.jsonl",
        f"data.eval_questions={data}/eval",
        f"models.encoder={encoder}", f"models.query_encoder={query_encoder}",
        f"models.base={reader}", f"models.reranker_base={reranker}", f"models.nli={nli}",
        "hw.shards=1", "hw.gpus=0", "hw.train_gpus=0",            # no GPUs
        "engine=transformers",                                    # vLLM needs a GPU
        f"steps.augment.llm.base_url={server.base_url}",          # the local server for
        "steps.augment.llm.model=tiny", "+steps.augment.max_tokens=12",   # gpt-3.5-turbo
        "retrieval.k=24",                                         # sizes (paper: top-100, 10
        # (every passage: random tiny encoders rank `title [SEP] text` too poorly to mine
        # reranker rows from a top-8)
        "steps.train_reranker.epochs=2", "steps.train_reranker.max_length=64",  # epochs, and
        "steps.sft_prealign.max_length=512", "steps.sft.max_length=512",        # 8,192 tokens)
        "steps.sft_prealign.epochs=1", "steps.sft.epochs=1",
        "steps.sft_prealign.per_device_batch_size=2", "steps.sft.per_device_batch_size=2",
        "steps.sft_prealign.grad_accum=1", "steps.sft.grad_accum=1",
    ]
    runs = run_paper_recipe(root, "dpa_rag_llama3.yaml", overrides, proc, SERVER_KEY)
    return runs, reader, reranker


def test_paper_recipe_writes_every_evaluation_row(paper_run):
    runs, _, _ = paper_run
    assert json.loads((runs / "latest" / "status.json").read_text())["state"] == "ok"
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    for name in ("evaluate_base", "evaluate_reranked", "evaluate_tuned", "evaluate"):
        assert metrics[name]["num_questions"] == len(EVAL) + len(WEBQSP)
        assert 0.0 <= metrics[name]["match_gold_in_pred"] <= 1.0
        assert 0.0 <= metrics[name]["token_f1"] <= 1.0


def test_the_augmenting_llm_and_the_nli_filter_ran(paper_run):
    runs, _, _ = paper_run
    augmented = artifact_rows(runs, "augment.out")
    assert {r["kind"] for r in augmented} == {"original", "rephrase", "complexity", "decompose",
                                             "constraint", "sparql"}
    kept = artifact_rows(runs, "nli_filter.out")
    assert {r["id"] for r in TRAIN} <= {r["id"] for r in kept} and len(kept) <= len(augmented)
    knowledge = artifact_rows(runs, "preference.out")
    assert {r["kind"] for r in knowledge} - {"original"}, "no augmented query was mined"
    assert {"aligned", "unaligned"} <= {r["category"] for r in knowledge}


def test_the_readers_sft_set_holds_the_kept_augmentations(paper_run):
    """The README: "Please merge your augmentation data" into the SFT set; it read the
    original queries only."""
    runs, _, _ = paper_run
    kept = {r["id"] for r in artifact_rows(runs, "nli_filter.out")
            if any(a.strip() for a in r["answers"] or [])}
    sft = {r["id"] for r in artifact_rows(runs, "generator_data.out")}
    assert sft == kept and sft - {r["id"] for r in TRAIN}, "no augmented query in the SFT set"


def test_the_reranker_and_both_reader_stages_train(paper_run):
    runs, reader, reranker = paper_run
    arts = runs / "latest" / "artifacts"
    stats = json.loads((arts / "train_reranker.out" / "training_stats.json").read_text())
    assert stats["losses"] == ["cls", "rank", "scl"] and stats["history"]   # paper: all three
    assert all(abs(sum(h["alphas"].values()) - 1) < 1e-5 for h in stats["history"])   # MGDA-UB
    base = safetensor_weights(reader)
    for step in ("sft_prealign", "sft"):
        tuned = safetensor_weights(arts / f"{step}.out")
        assert any(not (base[k] == tuned[k]).all() for k in base if k in tuned), step
    sft = json.loads((arts / "sft.out" / "training_stats.json").read_text())
    assert not sft["lora"], "the paper fine-tunes the whole reader"


def test_webqsp_reads_two_documents_and_the_others_three(paper_run):
    runs, _, _ = paper_run
    reranked = {r["id"]: r for r in artifact_rows(runs, "rerank_eval.out")}
    assert all(len(reranked[f"nq/{q['id']}"]["ctxs"]) == 3 for q in EVAL)
    assert all(len(reranked[f"webqsp/{q['id']}"]["ctxs"]) == 2 for q in WEBQSP)
    read = {r["id"]: r for r in artifact_rows(runs, "infer.out")}
    assert len(read) == len(EVAL) + len(WEBQSP)
    assert all(len(r["ctxs"]) == (2 if r["dataset"] == "webqsp" else 3) for r in read.values())


def test_passages_are_indexed_as_dpr_encodes_them(paper_run):
    """The paper recipe's index encodes a passage as DPR's pair, ``title [SEP] text``."""
    runs, _, _ = paper_run
    metas = list((runs / "latest" / "artifacts" / "index.out").resolve().rglob("meta.json"))
    assert metas and {json.loads(m.read_text())["text_template"] for m in metas} == \
        {"{title} [SEP] {text}"}
