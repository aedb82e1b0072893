"""The whole DPA-RAG DAG (conf/dpa_rag/pipeline.yaml) on tiny random-init models: five query
augmentations by a local LM -> the NLI filter -> retrieval -> preference mining by the reader ->
the reranker's rows -> reranker training (three losses, MGDA-UB) -> the pre-aligned task -> its
SFT -> the reranker's top documents for the SFT rows -> SFT from the pre-aligned weights -> the
three evaluation rows; a rerun is a no-op, and a new reader SFT setting recomputes only what
reads it. The no-augmentation variant plans without the augmenting and NLI steps.

The models, data and recipe are in conftest.py (the reader is taught to answer from the
document it is shown, so both aligned and unaligned knowledge exist)."""

from __future__ import annotations

import json

from stages.lib.testing.teach import safetensor_weights
from tests.conftest import rag
from tests.stages.conftest import artifact_rows, run_recipe
from tests.stages.dpa_rag.conftest import TRAIN, write_recipe


def test_dpa_rag_pipeline_with_tiny_models(tmp_path, tiny_models, monkeypatch):
    recipe = write_recipe(tmp_path, *tiny_models)
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
    assert reranked
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
    recipe = write_recipe(tmp_path, *tiny_models)
    monkeypatch.chdir(tmp_path)
    assert rag("plan", str(recipe), "+dpa_rag=no_augmentation", runs=tmp_path / "runs") == 0
    steps = {line.split()[1] for line in capsys.readouterr().out.splitlines()
             if line.startswith("│")}
    assert "preference" in steps and not steps & {"augment", "nli_filter"}


def test_result_labels_name_the_top_k_the_reader_reads():
    """The evaluation rows said "retriever top-3" whatever retrieval.top_k was, and the paper
    recipe's did not say that WebQSP reads 2 (its per-set block shows the docs read)."""
    from orchestrator.recipe import compose
    from tests.conftest import REPO

    for recipe, read in (("dpa_rag_demo.yaml", "top-5"),
                         ("dpa_rag_llama3.yaml", "top-5 (WebQSP: top-2)")):   # top_k_by_set
        steps = compose(REPO / "conf" / recipe, ["retrieval.top_k=5"])[0].config["steps"]
        assert steps["evaluate_base"]["name"] == f"retriever {read}, base reader"
        assert steps["evaluate_tuned"]["name"] == f"retriever {read}, DPA-RAG reader"
    steps = compose(REPO / "conf" / "dpa_rag_llama3.yaml",
                    ["retrieval.top_k_by_set.webqsp=1"])[0].config["steps"]
    assert steps["evaluate_base"]["name"] == "retriever top-3 (WebQSP: top-1), base reader"
    steps = compose(REPO / "conf" / "dpa_rag_demo.yaml", [])[0].config["steps"]
    assert steps["evaluate_base"]["name"] == "retriever top-3, base reader"   # cache keys kept


def test_the_paper_recipe_fine_tunes_the_reader_on_the_augmented_queries_too():
    """The README's SFT data is "w/o data augmentation" with "Please merge your augmentation
    data": the paper recipe's SFT set is the NLI-kept augmented set, every kind. It was
    load.train, the original queries only. The ablation and the demo keep the originals."""
    from orchestrator.recipe import compose
    from stages.dpa_rag.augment import KINDS
    from tests.conftest import REPO

    def steps(recipe, *overrides):
        return compose(REPO / "conf" / recipe, list(overrides))[0].config["steps"]

    paper = steps("dpa_rag_llama3.yaml")
    assert paper["retrieve_sft"]["inputs"]["questions"] == "nli_filter"
    assert paper["retrieve_sft"]["inputs"] == {**paper["retrieve_train"]["inputs"]}   # one task
    assert sorted(paper["generator_data"]["kinds"]) == sorted(["original", *KINDS])
    for ablation in (steps("dpa_rag_llama3.yaml", "+dpa_rag=no_augmentation"),
                     steps("dpa_rag_demo.yaml")):
        assert ablation["augment"] is None and ablation["nli_filter"] is None
        assert ablation["retrieve_sft"]["inputs"]["questions"] == "load.train"
    assert "kinds" not in steps("dpa_rag_demo.yaml")["generator_data"]   # demo: keys as before
    for both in (steps("dpa_rag_llama3.yaml", "+dpa_rag=black_box"),
                 steps("dpa_rag_llama3.yaml", "+dpa_rag=[no_augmentation,black_box]")):
        assert both["retrieve_sft"] is None and both["generator_data"] is None
