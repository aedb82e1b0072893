"""The RAG-Instruct *paper* recipe (conf/rag_instruct_llama3.yaml) run as a researcher would on
a laptop before booking the cluster: `rag run` on the shipped file with overrides for what a CPU
and tiny models force, every other paper setting kept: exemplars of all five RAG paradigms with
relevance-selected source documents, the LLM teacher (GPT-4o in the paper) with up to 5 attempts
for a reply that parses, 10 documents per example, full fine-tuning with the seven prompt
wrappers (cosine, 5 % warmup, weight decay 0.1, seed 42), inference sampled at T 0.5 / top-p 0.9
over 10 retrieved documents, per-set accuracy beside the untrained model.

The teacher is a real OpenAI-compatible HTTP server on 127.0.0.1
(tests/stages/lib/endpoint/chat_server.py) running a tiny model taught to reply with a (q*, a*)
JSON object, one per paradigm, so the paper's parse-and-retry path is what decides.
"""

from __future__ import annotations

import json

import pytest
from tests.conftest import REPO, run_paper_recipe
from tests.stages.conftest import artifact_rows
from tests.stages.lib.endpoint.conftest import SERVER_KEY, start_server

from stages.lib.testing.teach import safetensor_weights, teach
from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder

pytestmark = pytest.mark.paper   # about 20-40 s each: CI runs them (pytest -m paper)

PARADIGMS = ("useless_doc", "single_doc_support", "multi_doc_support", "single_doc_answer",
             "multi_doc_answer")
PASSAGES = [{"id": f"p{i}", "title": f"Place {i}", "text": f"Place {i} lies by river {i % 5}."}
            for i in range(40)]
EXEMPLARS = [{"id": f"x{i}", "question": f"Which river does place {i} lie by?"}
             for i in range(10)]
POPQA = [{"id": f"e{i}", "question": f"Which river does place {i} lie by?",
          "answers": [f"river {i % 5}"]} for i in range(20, 24)]
PUBHEALTH = [{"id": f"h{i}", "question": f"Place {i} lies by river {i % 5}.", "answers": ["true"]}
             for i in range(30, 32)]
REPLIES = {p: json.dumps({"q*": f"Which place lies by the river? ({p})", "a*": f"Place {i}"})
           for i, p in enumerate(PARADIGMS)}


def _teacher_lessons():
    """The synthesis prompt of each paradigm, on passages like the corpus's -> its JSON reply."""
    from stages.lib.prompts import load_prompt, messages
    from stages.rag_instruct.synthesis import render_documents

    prompts = {p: load_prompt(REPO / "conf" / "prompts" / "rag_instruct" / f"{p}.yaml")
               for p in PARADIGMS}

    def lessons(rng):
        out = []
        for _ in range(4):
            paradigm = rng.choice(PARADIGMS)
            docs = rng.sample(PASSAGES, rng.randint(1, 4))
            out.append((messages(prompts[paradigm], documents=render_documents(docs),
                                 example=rng.choice(EXEMPLARS)["question"]), "", REPLIES[paradigm]))
        return out

    return lessons


def _data(folder):
    (folder / "eval").mkdir(parents=True)
    files = {"corpus.jsonl": PASSAGES, "exemplars.jsonl": EXEMPLARS, "eval/popqa.jsonl": POPQA,
             "eval/pubhealth.jsonl": PUBHEALTH}
    for name, rows in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """One run of the paper recipe on tiny models; returns (runs dir, base model)."""
    root = tmp_path_factory.mktemp("ri_paper")
    texts = [p["text"] for p in PASSAGES] + [q["question"] for q in EXEMPLARS] + list(
        REPLIES.values()) + ["### Instruction: Reference Document: Please refer to the document "
                             "above and answer the following question ### Response: q* a*"]
    encoder, base = tiny_encoder(root / "encoder", texts), tiny_causal_lm(root / "base", texts)
    teacher = tiny_causal_lm(root / "teacher", texts)
    teach(teacher, _teacher_lessons(), steps=300, lr=3e-3)
    data = _data(root / "data")
    proc, server = start_server(teacher, root, SERVER_KEY)
    overrides = [
        f"data.corpus={data}/corpus.jsonl", f"data.train_questions={data}/exemplars.jsonl",
        f"data.eval_questions={data}/eval", f"models.encoder={encoder}", f"models.base={base}",
        "hw.shards=1", "hw.gpus=0", "hw.train_gpus=0",            # no GPUs
        "engine=transformers",                                    # vLLM needs a GPU
        f"steps.synthesize.llm.base_url={server.base_url}",       # the local server for GPT-4o
        "steps.synthesize.llm.model=tiny",
        "steps.synthesize.max_tokens=64",                         # sizes (paper: 4,096 and
        "steps.infer_base.max_new_tokens=8", "steps.infer.max_new_tokens=8",   # 500 tokens; the
        "steps.sft.grad_accum=1", "steps.sft.max_length=1024",    # paper's 3 epochs are kept)
        # noise from ranks 201-250 of a 40-passage corpus: there are none
        "retrieval.noise_k=40", "rag_instruct.noise_from=12",
    ]
    runs = run_paper_recipe(root, "rag_instruct_llama3.yaml", overrides, proc, SERVER_KEY)
    return runs, base


def test_paper_recipe_writes_both_evaluations_per_set(paper_run):
    runs, _ = paper_run
    assert json.loads((runs / "latest" / "status.json").read_text())["state"] == "ok"
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    for name, label in (("evaluate_base", "base model"), ("evaluate", "RAG-Instruct")):
        assert metrics[name]["label"] == label
        assert metrics[name]["num_questions"] == len(POPQA) + len(PUBHEALTH)
        assert set(metrics[name]["by_dataset"]) == {"popqa", "pubhealth"}
        assert metrics[name]["by_dataset"]["pubhealth"]["rule"] != metrics[name]["by_dataset"]["popqa"]["rule"]
        assert metrics[name]["avg_selected_docs"] == 10                 # paper: --top_n 10


def test_the_llm_teacher_wrote_every_paradigm(paper_run):
    runs, _ = paper_run
    synthesized = artifact_rows(runs, "synthesize.out")
    assert {r["paradigm"] for r in synthesized} == set(PARADIGMS)
    # the taught JSON, parsed (sampled at the paper's T 1.0: the paradigms' replies may mix)
    assert all(r["question"].startswith("Which place lies by the river?") and
               r["answers"][0].startswith("Place ") for r in synthesized)
    log = (runs / "latest" / "logs" / "synthesize.log").read_text()
    assert f"{len(synthesized)} of {len(EXEMPLARS)} exemplars gave an example" in log


def test_examples_hold_ten_documents_with_their_sources(paper_run):
    runs, _ = paper_run
    examples = artifact_rows(runs, "contexts.out")
    assert examples
    for row in examples:
        ids = [c["id"] for c in row["ctxs"]]
        assert len(ids) == 10 and set(row["gold"]) <= set(ids)        # paper: D* + noise = 10


def test_sft_trains_the_whole_model(paper_run):
    runs, base = paper_run
    arts = runs / "latest" / "artifacts"
    stats = json.loads((arts / "sft.out" / "training_stats.json").read_text())
    assert not stats["lora"] and stats["steps"] >= 1
    # the paper's 3 epochs, each example in a wrapper drawn anew: 3 blocks of rows, in order
    examples, rows = artifact_rows(runs, "contexts.out"), artifact_rows(runs, "format.out")
    assert len(rows) == 3 * len(examples) == stats["num_examples"] and not stats["shuffle"]
    assert [r["id"].rsplit("#", 1)[1] for r in rows] == sorted(
        str(e) for e in range(3) for _ in examples)
    before, after = safetensor_weights(base), safetensor_weights(arts / "sft.out")
    assert any(not (before[k] == after[k]).all() for k in before if k in after)
