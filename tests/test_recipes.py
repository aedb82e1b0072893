"""Every shipped recipe composes and validates; the paper recipe plans on a CPU-only machine and
refuses to run there with a message that says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import REPO, rag

RECIPES = sorted(p.name for p in (REPO / "conf").glob("*.yaml"))


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_validates(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    rc = rag("plan", f"conf/{name}", "--json", runs=tmp_path / "runs")
    plan = json.loads(capsys.readouterr().out)
    problems = plan["members"][0]["problems"]   # the paper recipes' data is not in the repo,
    assert rc == 0 and all("does not exist" in p                # and their API keys may be unset
                           or "environment variable" in p       # and this machine may lack GPUs
                           or " per shard asked for, " in p       # (one GPU step; several:)
                           or " steps ask for GPUs (" in p for p in problems)
    if "demo" in name:   # a demo runs on this machine as it is: no data, key or model missing
        assert problems == []
    steps = {s["step"] for s in plan["members"][0]["steps"]}
    assert steps
    if name.startswith("dynamicrag"):  # each recipe family has its own DAG
        assert {"retrieve_train", "rerank", "label", "convert", "sft", "sample", "reward", "dpo",
                "infer", "evaluate"} <= steps
    if name.startswith("rag_instruct"):
        assert {"exemplars", "synthesize", "retrieve_noise", "contexts", "format", "sft",
                "infer_base", "infer", "evaluate_base", "evaluate"} <= steps
    if name.startswith("dpa_rag"):
        assert {"preference", "reranker_data", "train_reranker", "prealign", "sft_prealign",
                "rerank_sft", "generator_data", "sft", "rerank_eval", "infer_base",
                "infer_reranked", "infer", "evaluate"} <= steps
        assert ("augment" in steps) == (name == "dpa_rag_llama3.yaml")   # the demo has none


def test_dpa_rag_paper_recipe_fits_its_gpus_with_the_papers_reader_settings(tmp_path,
                                                                            monkeypatch, capsys):
    """Both reader stages at LLaMA-Factory's settings (ZeRO-3, 4 x 4 x 8, cutoff 8,192): the
    plan shows the memory estimate under the 80 GiB budget, and the reranker trains as
    train_bge_joined.py does."""
    monkeypatch.chdir(REPO)
    assert rag("plan", "conf/dpa_rag_llama3.yaml", "--json", runs=tmp_path / "runs") == 0
    steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["members"][0]["steps"]}
    for name in ("sft_prealign", "sft"):
        note = next(n for n in steps[name]["notes"] if n.startswith("GPU memory:"))
        assert "ZeRO-3 over 8 GPU(s)" in note and "budget 80 GiB" in note
        assert float(note.split()[2]) < 80


def test_recipe_opens_with_a_comment_and_the_run_command():
    for name in RECIPES:
        text = (REPO / "conf" / name).read_text()
        assert text.startswith("#") and f"rag run conf/{name}" in text, name


def test_paper_recipe_plans_without_gpus_and_names_missing_paths(tmp_path, monkeypatch, capsys):
    # from another directory: the recipe's relative paths (sources, conf/deepspeed/...) are
    # found in its project; none of the paper's data or models exist there
    monkeypatch.chdir(tmp_path)
    recipe = str(REPO / "conf" / "dynamicrag_llama3.yaml")
    assert rag("plan", recipe, "--check", runs=tmp_path / "runs") == 2   # a run would stop: CI
    capsys.readouterr()
    assert rag("plan", recipe, "--json", runs=tmp_path / "runs") == 0
    plan = json.loads(capsys.readouterr().out)
    problems = plan["members"][0]["problems"]
    line = next(i for i, text in enumerate(Path(recipe).read_text().splitlines(), 1)
                if text.startswith("  corpus: data/psgs_w100.tsv"))
    assert any(p.startswith(f"{recipe}:{line} (data.corpus): source 'corpus': "
                            "data/psgs_w100.tsv does not exist (looked in") for p in problems)
    assert any("models/llama3_8b" in p for p in problems)
    steps = {s["step"]: s for s in plan["members"][0]["steps"]}
    assert steps["retrieve_train"]["shards"] == 8 and steps["sample"]["shards"] == 8
    assert any(n.startswith("steps.sft.deepspeed: conf/deepspeed/zero3_bf16.json not in the "
                            "current directory") for n in steps["sft"]["notes"])


def test_paper_recipe_on_shipped_passages_builds_no_index(tmp_path, monkeypatch, capsys):
    """The released training file and evaluation sets ship their passages: with
    +dynamicrag=shipped_passages there is no index step and the encoder is not needed."""
    monkeypatch.chdir(REPO)
    recipe = str(REPO / "conf" / "dynamicrag_llama3.yaml")
    assert rag("plan", recipe, "+dynamicrag=shipped_passages", "--json",
               runs=tmp_path / "runs") == 0
    member = json.loads(capsys.readouterr().out)["members"][0]
    steps = {s["step"] for s in member["steps"]}
    assert "index" not in steps and {"retrieve_train", "retrieve_eval", "rerank"} <= steps
    assert not any("contriever" in p or "psgs_w100" in p for p in member["problems"])
    assert any("models/llama3_8b" in p for p in member["problems"])


def test_paper_recipe_refuses_to_run_without_gpus(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert rag("run", str(REPO / "conf" / "dynamicrag_llama3.yaml"), runs=tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "steps ask for GPUs (" in err and "but no CUDA GPU is visible" in err
    assert "run on CPU with hw.gpus=0 hw.train_gpus=0" in err
    assert not (tmp_path / "runs" / "cache" / "objects").exists()


def test_sweep_plan_of_the_paper_recipe_shares_everything_before_dpo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert rag("plan", str(REPO / "conf" / "dynamicrag_llama3.yaml"), "-m",
               "steps.dpo.beta=0.05,0.1,0.2", "--json", runs=tmp_path / "runs") == 0
    plan = json.loads(capsys.readouterr().out)
    tasks_per_member = plan["tasks"] // 3
    # dpo, infer (8 shards) and evaluate differ per member; everything else is shared
    assert plan["unique_tasks"] == tasks_per_member + 2 * (1 + 8 + 1)


@pytest.mark.parametrize("name", [n for n in RECIPES if n.endswith("_demo.yaml")
                                  and not n.startswith("reinforced_ir")])   # reads no train set
def test_own_data_without_eval_questions_stops_at_load(name, tmp_path, monkeypatch):
    """Every demo's own-data line with data.eval_questions forgotten is refused at load, naming
    the key, before the corpus is read: not a warning there and an "input is empty" failure
    steps later (each recipe's load says which question sets it reads)."""
    (tmp_path / "corpus.jsonl").write_text('{"id": "p1", "title": "T", "text": "Velmora."}\n')
    (tmp_path / "train.jsonl").write_text(json.dumps(
        {"id": "q1", "question": "Who?", "answers": ["Ardan"], "gold": ["p1"]}) + "\n")
    monkeypatch.chdir(REPO)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    code = rag("run", f"conf/{name}", f"data.corpus={tmp_path / 'corpus.jsonl'}",
               f"data.train_questions={tmp_path / 'train.jsonl'}", "--only", "load",
               "--no-progress", runs=runs)
    log = (runs / "latest" / "logs" / "load.log").read_text()
    assert code == 2, log
    assert "step 'load': no eval questions: data.eval_questions is null" in log
    assert "corpus: " not in log     # refused before the corpus was read


@pytest.mark.parametrize("fused", [True, False], ids=["fused_lm_head", "whole_logits"])
def test_the_memory_figures_the_readme_and_recipes_quote_are_what_rag_plan_prints(
        tmp_path, monkeypatch, capsys, request, fused):
    """README and conf/dynamicrag_llama3.yaml quote `rag plan`'s GPU memory estimate with TRL's
    fused LM head (1.16 and later) and with whole logits (older TRL): both must be the plan's."""
    import stages.lib.train.memory_check as memory_check

    readme = " ".join((REPO / "README.md").read_text().split())
    dynamicrag = " ".join((REPO / "conf" / "dynamicrag_llama3.yaml").read_text()
                          .replace("#", " ").split())
    quoted = {   # recipe, step: (with the fused LM head, with whole logits), where quoted
        ("rag_instruct_llama3", "sft"): ("52.9", "60.6", readme),
        ("dpa_rag_llama3", "sft"): ("35.1", "74.7", readme),
        ("dynamicrag_llama3", "sft"): ("27.8", "46.1", dynamicrag)}
    from orchestrator import dag

    monkeypatch.setattr(memory_check, "trl_fused_lm_head", lambda: fused)
    dag._step_memo.cache_clear()     # steps (and their notes) built earlier in this process,
    request.addfinalizer(dag._step_memo.cache_clear)   # and those built here, for later tests
    monkeypatch.chdir(REPO)
    for (recipe, step), (with_fused, whole, text) in quoted.items():
        assert rag("plan", f"conf/{recipe}.yaml", "--json", runs=tmp_path / "runs") == 0
        steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["members"][0]["steps"]}
        note = next(n for n in steps[step]["notes"] if n.startswith("GPU memory:"))
        assert note.split()[2] == (with_fused if fused else whole), (recipe, note)
        assert f"{with_fused} GiB" in text and f"{whole} GiB" in text, recipe
