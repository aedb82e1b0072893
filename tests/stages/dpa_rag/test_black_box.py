"""DPA-RAG with a black-box reader (conf/dpa_rag/black_box.yaml): the reader is only reachable
over HTTP. The taught tiny reader of conftest.py is served by a real OpenAI-compatible server
(tests/stages/lib/endpoint/chat_server.py); its preferences are mined through the endpoint
client, the reranker is trained on them, and the two evaluation rows (retriever top-k, aligned
reranker top-k) are read by it too. No reader stage is fine-tuned; a rerun asks nothing; the
API key is written nowhere. ``rag plan`` names the reader and refuses a step that has both a
reader endpoint and a wired checkpoint, and the shipped DPA-RAG recipes plan with the variant."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, rag
from tests.stages.conftest import artifact_rows, run_recipe
from tests.stages.dpa_rag.conftest import TRAIN, write_recipe
from tests.stages.lib.endpoint.conftest import start_server

KEY = "sk-test-BlackBox42"
BLACK_BOX_STEPS = {"load", "index", "retrieve_train", "preference", "reranker_data",
                   "train_reranker", "retrieve_eval", "rerank_eval", "infer_base",
                   "infer_reranked", "evaluate_base", "evaluate_reranked"}


@pytest.fixture(scope="module")
def reader_server(tiny_models, tmp_path_factory):
    """The taught reader behind an OpenAI-compatible server that wants ``KEY``."""
    proc, server = start_server(tiny_models[1], tmp_path_factory.mktemp("reader_server"), KEY)
    yield server
    proc.terminate()
    proc.wait(timeout=30)


def _variant(server) -> tuple[str, ...]:
    return ("+dpa_rag=[no_augmentation,black_box]", f"reader.base_url={server.base_url}",
            "reader.model=tiny", "reader.api_key_env=READER_KEY")


def test_black_box_reader_over_http(tmp_path, tiny_models, reader_server, monkeypatch):
    monkeypatch.setenv("READER_KEY", KEY)
    recipe = write_recipe(tmp_path, *tiny_models)
    reader_server.reset()
    runs = run_recipe(recipe, tmp_path, monkeypatch, *_variant(reader_server))

    steps = json.loads((runs / "latest" / "status.json").read_text())["steps"]
    assert set(steps) == BLACK_BOX_STEPS
    assert not {s["stage"] for s in steps.values()} & {"sft", "dpa_rag.prealign",
                                                        "dpa_rag.generator_data"}
    knowledge = artifact_rows(runs, "preference.out")
    assert len(knowledge) == len(TRAIN) * 8          # every (query, document) of the top-8
    assert {"aligned", "unaligned"} <= {r["category"] for r in knowledge}, \
        "the served reader answers from its document, as it does in process"
    metrics = json.loads((runs / "latest" / "metrics.json").read_text())
    assert set(metrics) == {"evaluate_base", "evaluate_reranked"}
    assert all(metrics[name]["num_questions"] == 4 for name in metrics)

    # each conversation asked once: per training query no document + 8 alone, then 4 x 2 rows
    stats = reader_server.stats()
    assert stats["served"] == stats["received"] == len(TRAIN) * 9 + 4 * 2
    assert not any(KEY.encode() in p.read_bytes() for p in runs.rglob("*") if p.is_file())

    assert rag("run", str(recipe), *_variant(reader_server), "--no-progress", runs=runs) == 0
    again = json.loads((runs / "latest" / "status.json").read_text())["steps"]
    assert {s["cache"] for s in again.values()} == {"hit"}
    assert reader_server.stats()["received"] == stats["received"], "a rerun asks nothing"


def test_plan_names_the_reader_and_refuses_a_second_one(tmp_path, tiny_models, reader_server,
                                                        monkeypatch, capsys):
    recipe = write_recipe(tmp_path, *tiny_models)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    assert rag("plan", str(recipe), *_variant(reader_server), runs=runs) == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert f"note: reader: openai tiny at {reader_server.base_url}" in out
    assert "prealign" not in out and "infer_tuned" not in out

    both = (*_variant(reader_server), "steps.infer_base.inputs.model=base")
    assert rag("plan", str(recipe), *both, runs=runs) == 2
    err = capsys.readouterr().err
    assert "steps.infer_base: reader is set and inputs.model is wired" in err
    assert "hint: to ask the reader endpoint, unwire the checkpoint" in err


@pytest.mark.parametrize("recipe, variant, extra", [
    ("dpa_rag_llama3.yaml", "+dpa_rag=black_box", {"augment", "nli_filter"}),
    ("dpa_rag_llama3.yaml", "+dpa_rag=[no_augmentation,black_box]", set()),
    ("dpa_rag_demo.yaml", "+dpa_rag=black_box", {"encoder"})])   # demo: prepare_model; no base
def test_shipped_recipes_plan_with_the_black_box_reader(recipe, variant, extra, tmp_path,
                                                        monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")   # unset, the plan names it as a problem
    assert rag("plan", f"conf/{recipe}", variant, "--json", runs=tmp_path / "runs") == 0
    (member,) = json.loads(capsys.readouterr().out)["members"]
    steps = {s["step"]: s for s in member["steps"]}
    assert set(steps) == BLACK_BOX_STEPS | extra
    for name in ("preference", "infer_base", "infer_reranked"):
        assert steps[name]["notes"] == ["reader: openai gpt-3.5-turbo at https://api.openai.com/v1"]
    assert not [p for p in member["problems"] if "does not exist" not in p   # nor GPUs, here
                and " steps ask for GPUs (" not in p]
