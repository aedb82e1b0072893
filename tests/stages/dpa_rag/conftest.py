"""Shared by the DPA-RAG pipeline tests: a tiny corpus of "alpha", "beta" and "gamma" places,
training and evaluation questions, the tiny models (an encoder, the taught reader, an NLI
classifier; built once per session) and ``write_recipe``, the DAG of conf/dpa_rag/pipeline.yaml
on them.

A random-init reader says noise, which is wrong with or without a document: there would be no
aligned or unaligned knowledge to train on. So the tiny reader is taught one rule first: with
no document it says "alpha beta", with a document the colour word the document holds. A gold
is correct when it occurs in the answer (``dpa_rag.preference``'s default) and the reranker's
sides follow the change in the answer's token F1 (:func:`stages.dpa_rag.categories.side`), so
on these passages:

* a question whose gold is "alpha" or "beta" is answered right without a document, at F1 2/3:
  the documents of its colour make the answer exact (both correct, F1 up: positive), the others
  make it wrong (unaligned: negative). These queries give the reranker its rows;
* a question whose gold is "gamma" is answered wrong without a document: its gamma documents
  are aligned, the others leave it wrong at F1 0 (both incorrect, unchanged: unused)."""

from __future__ import annotations

import json
import shutil

import pytest

from stages.lib.testing.teach import teach
from stages.lib.testing.tiny import tiny_causal_lm, tiny_classifier, tiny_encoder
from tests.conftest import REPO

COLOURS = ("alpha", "beta", "gamma")
UNKNOWN = "alpha beta"    # the reader's answer without a document
PASSAGES = [{"id": f"p{i}", "title": f"Place {i}", "text": f"Place {i} is {COLOURS[i % 3]}."}
            for i in range(24)]
TRAIN = [{"id": f"t{i}", "question": f"Which colour is place {i}?",
          "answers": [COLOURS[i % 3]]} for i in range(8)]
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
            answer = docs[0]["text"].split()[-1].rstrip(".") if docs else UNKNOWN
            out.append((generator_messages(reader, question, docs, "nq"), "", answer))
        return out

    return lessons


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("dpa_rag_models")
    texts = [p["text"] for p in PASSAGES] + [q["question"] for q in TRAIN]
    texts += ["Answer the question using the passages below. Question: Answer: Yes No",
              "Rephrase complexity decompose constraint SPARQL SELECT WHERE document helps"]
    reader = tiny_causal_lm(root / "lm", texts)
    teach(reader, _reader_lessons(), steps=400, lr=3e-3)
    return (tiny_encoder(root / "encoder", texts), reader,
            tiny_classifier(root / "nli", texts))


def write_recipe(tmp_path, encoder, lm, nli):
    """``conf/tiny.yaml`` in ``tmp_path``: the DPA-RAG DAG on the tiny models and data."""
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
