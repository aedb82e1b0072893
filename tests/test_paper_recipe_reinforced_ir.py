"""The Reinforced-IR *paper* recipe (conf/reinforced_ir_llama3.yaml) run as a researcher would on
a laptop before booking the cluster: `rag run` on the shipped file with overrides for what a CPU
and tiny random-init models force, every other paper setting kept (2 rounds, 5 sampled
augmentations at T 0.9 / top-p 0.9, the 0.8/0.2 fusion, Contriever's mean pooling without
normalisation, bge's CLS + instruction for mining, few-shot examples in the query synthesis
prompt and quality control of the synthetic queries sampled as the query (T 0.5), the teacher's
repetition penalty 1.1, DPO with LoRA r 32 / alpha 64 / dropout 0 / beta 0.1 and a linear
schedule, SciFact's answer type "answer", group size 16, the m3 KD loss at temperature 0.02).

The synthesis LLM (gpt-4o-mini in the paper) is a real OpenAI-compatible HTTP server on
127.0.0.1 (tests/stages/lib/endpoint/chat_server.py) running a tiny model taught the quality
control rule "a passage about a river answers, one about a mountain does not", so the filter's
effect is visible: every kept query comes from a river passage.
"""

from __future__ import annotations

import json

import pytest
from tests.conftest import REPO, run_paper_recipe
from tests.stages.conftest import artifact_rows
from tests.stages.lib.endpoint.conftest import SERVER_KEY, start_server

from stages.lib.testing.teach import safetensor_weights, teach
from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder
from stages.reinforced_ir.synthesis import load_examples

pytestmark = pytest.mark.paper   # about 20-40 s each: CI runs them (pytest -m paper)

PLACES = [(f"d{i}", f"Place {i}", f"Place {i} lies by the {'river' if i % 2 else 'mountain'} "
           f"and was founded in {1800 + i}.") for i in range(24)]
QUERIES = [(f"q{i}", f"Which place by the river was founded in {1800 + i}?") for i in range(1, 12, 3)]


def _beir(folder):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in PLACES))
    (folder / "queries.jsonl").write_text("".join(
        json.dumps({"_id": i, "text": q}) + "\n" for i, q in QUERIES))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{i}\td{i[1:]}\t1\n" for i, _ in QUERIES))
    return folder


def _teacher_lessons():
    """The synthesis LLM's two calls, on the prompts the paper recipe wires: a query for a
    passage (with the few-shot examples), and the 0/1 quality verdict (1 for a river passage,
    0 for a mountain one)."""
    from stages.lib.prompts import load_prompt, messages
    from stages.reinforced_ir.synthesis import constraints, load_examples, render_examples

    prompts = REPO / "conf" / "prompts" / "reinforced_ir"
    query = load_prompt(prompts / "query_fewshot.yaml")
    quality = load_prompt(prompts / "quality.yaml")
    shots = render_examples(load_examples(prompts / "query_examples.yaml"), "scientific claim",
                            "document")
    task = "Given a scientific claim, retrieve documents that support or refute the claim."

    def lessons(rng):
        out = []
        for _ in range(4):
            _, title, text = rng.choice(PLACES)
            passage, river = f"{title}\n{text}", "river" in text
            asked = rng.choice(["When was the place founded?", "Who founded the place?"])
            out.append((messages(query, task=task, passage=passage, query_type="scientific claim",
                                 passage_type="document", examples=shots, **constraints(rng)),
                        "", asked))
            out.append((messages(quality, task=task, query=asked, passage=passage,
                                 relation="supports or refutes"), "", "1" if river else "0"))
        return out

    return lessons


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """One run of the paper recipe on tiny models; returns (runs dir, models, overrides)."""
    root = tmp_path_factory.mktemp("rir_paper")
    texts = [t for _, _, t in PLACES] + [q for _, q in QUERIES] + [
        "Task: Query: Passage: Reply with 1 if it does and 0 Write one claim that this answers",
        "Decide whether the passage supports or refutes the query",
        "Rank the passages below [0] > [1] > [2] identifiers relevant Generate the topic about"]
    encoder, generator = tiny_encoder(root / "encoder", texts), tiny_causal_lm(root / "lm", texts)
    # the teacher's tokenizer also knows the few-shot examples' words, so that its query
    # prompts (about 1,500 characters of examples) stay short enough to learn the filter rule
    shots = load_examples(REPO / "conf" / "prompts" / "reinforced_ir" / "query_examples.yaml")
    teacher = tiny_causal_lm(root / "teacher", texts + [t for item in shots.items for t in item])
    teach(teacher, _teacher_lessons(), steps=300, lr=3e-3)
    beir = _beir(root / "scifact")
    proc, server = start_server(teacher, root, SERVER_KEY)
    overrides = [
        f"data.beir={beir}",                                    # paths: data and models
        f"models.generator={generator}", f"models.retriever={encoder}", f"models.miner={encoder}",
        "hw.shards=1", "hw.gpus=0", "hw.train_gpus=0",          # no GPUs
        "engine=transformers",                                  # vLLM needs a GPU
        f"steps.synthesize.llm.base_url={server.base_url}",     # the local server for gpt-4o-mini
        "steps.synthesize.llm.model=tiny",
        "steps.synthesize.n_passages=16",                       # sizes (paper: 15,000 passages,
        "steps.synthesize.query_max_tokens=12",                 # 300 generated tokens)
        "steps.augment_eval_base.max_tokens=8",
        "repeat.round.steps.augment.max_tokens=8",
        "repeat.round.steps.augment_greedy.max_tokens=8",
        "repeat.round.steps.augment_eval.max_tokens=8",
        "repeat.round.steps.distill.max_tokens=8",
        "repeat.round.steps.generator.max_length=512",
        "repeat.round.steps.retriever.batch_size=2",            # paper: 16 (of ~15k queries)
        # a random-init retriever embeds every text in about the same direction: no augmentation
        # clears the paper's 0.95 margin, so no DPO pair would exist
        "repeat.round.steps.feedback.margin=1.0", "repeat.round.steps.feedback.require_gain=false",
        # the paper's fallback window (ranks 30-200) is past the end of a 24-passage corpus
        "repeat.round.steps.mine.fallback_lo=2", "repeat.round.steps.mine.fallback_hi=24",
    ]
    runs = run_paper_recipe(root, "reinforced_ir_llama3.yaml", overrides, proc, SERVER_KEY)
    return runs, (encoder, generator), overrides


def test_paper_recipe_runs_every_round_and_writes_its_metrics(paper_run):
    runs, _, _ = paper_run
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["state"] == "ok"
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    for name in ("eval_base", "eval_base_aug", "eval_1", "eval_aug_1", "eval_2", "eval_aug_2"):
        assert metrics[name]["queries"] == len(QUERIES)
        assert 0.0 <= metrics[name]["ndcg@10"] <= 1.0
    assert metrics["eval_aug_2"]["augmented"] is True and metrics["eval_2"]["augmented"] is False


def test_quality_control_keeps_the_queries_the_teacher_accepts(paper_run):
    runs, _, _ = paper_run
    kept = artifact_rows(runs, "synthesize.out")
    river = {i for i, _, t in PLACES if "river" in t}
    assert kept and all(r["gold"][0] in river for r in kept), "a rejected query was kept"
    log = (runs / "latest" / "logs" / "synthesize.log").read_text()
    assert f"16 passages, 16 queries written, {len(kept)} kept by quality control" in log
    assert len(kept) < 16, "quality control dropped nothing"


def test_the_paper_settings_reach_the_steps(paper_run):
    runs, _, _ = paper_run
    arts = runs / "latest" / "artifacts"
    augmented = artifact_rows(runs, "augment_1.out")
    assert all(len(r["augmentations"]) == 5 for r in augmented)        # dpo_num 5
    groups = artifact_rows(runs, "mine_1.out")
    assert groups and max(len(g["neg"]) for g in groups) == 15         # keep 15 negatives
    stats = json.loads((arts / "retriever_1.out" / "training_stats.json").read_text())
    assert stats["history"] and all(h["loss"] > 0 for h in stats["history"])
    adapter = json.loads((arts / "generator_1.out" / "adapter" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (32, 64)          # paper: LoRA r 32, alpha 64
    assert adapter["lora_dropout"] == 0.0                             # LLaMA-Factory's default
    config = (runs / "latest" / "config.yaml").read_text()
    assert "query_type: scientific claim" in config and "passage_type: document" in config
    assert "warmup_ratio: 0.0" in config and "lr_scheduler: linear" in config
    assert "answer_type: answer" in config and "quality_temperature: 0.5" in config
    assert "stance: random" in config and "repetition_penalty: 1.1" in config
    assert "query_fewshot.yaml" in config and "query_examples.yaml" in config   # few-shot


def test_both_rounds_train_the_generator_and_the_retriever(paper_run):
    runs, (encoder, generator), _ = paper_run
    arts = runs / "latest" / "artifacts"
    e0, r1, r2 = (safetensor_weights(p) for p in (encoder, arts / "retriever_1.out",
                                                   arts / "retriever_2.out"))
    assert any(not (e0[k] == r1[k]).all() for k in e0 if k in r1), "round 1 retriever unchanged"
    assert any(not (r1[k] == r2[k]).all() for k in r1 if k in r2), "round 2 retriever unchanged"
    g0, g1, g2 = (safetensor_weights(p) for p in (generator, arts / "generator_1.out",
                                                   arts / "generator_2.out"))
    assert any(not (g0[k] == g1[k]).all() for k in g0 if k in g1), "round 1 DPO changed nothing"
    assert any(not (g1[k] == g2[k]).all() for k in g1 if k in g2), "round 2 DPO changed nothing"
    dpo = json.loads((arts / "generator_1.out" / "training_stats.json").read_text())
    assert dpo["lora"] and dpo["num_examples"] > 0 and dpo["steps"] >= 1      # 1 epoch, batch 4
