"""Shared by the stage tests that run tiny models (index, retrieve, rerank, sample, infer): a
small corpus and questions, the tiny models (built once per session), and ``model_env`` for
calling a stage directly. Inputs are real handles written with the orchestrator's writer and
every output is written back through it (schema checked)."""

import logging
from pathlib import Path

import numpy as np
import pytest

from orchestrator.api import StageContext
from orchestrator.artifacts import Ref, write_artifact
from stages.common.index import index
from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder, tiny_seq2seq
from stages.schemas import Embeddings, Model, Passages

PASSAGES = [{"id": f"p{i}", "title": f"Entity {i}", "text": f"Entity {i} was born in city {i % 7}."}
            for i in range(40)]
QUESTIONS = [{"id": f"q{i}", "dataset": "nq", "question": f"Where was Entity {i} born?",
              "answers": [f"city {i % 7}"], "gold": [f"p{i}"]} for i in range(0, 40, 5)]



@pytest.fixture(scope="session")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("m")
    texts = [p["text"] for p in PASSAGES] + [q["question"] for q in QUESTIONS]
    return {"enc": tiny_encoder(root / "enc", texts=texts), "t5": tiny_seq2seq(root / "t5", texts),
            "lm": tiny_causal_lm(root / "lm", texts=texts)}


@pytest.fixture
def model_env(tmp_path):
    """(art, ctx): ``art(cls, value)`` makes an input handle; ``ctx(step, shard, num)`` a context."""
    counter = iter(range(1000))

    def art(cls, value):
        if cls is Model:   # a source directory: a handle on it, not moved into a cache
            return Model(Ref("dir", Model.type_name(), "hash", [str(value)]))
        ref = write_artifact(value, cls, tmp_path / f"a{next(counter)}", "test.x", "key")
        return cls(ref)

    def ctx(step, shard=0, num=1):
        return StageContext(step, shard, num, tmp_path / f"work{next(counter)}",
                            tmp_path / "scratch", logging.getLogger(f"test.{step}"))

    return art, ctx


def index_corpus(art, ctx, models, cfg, shards=1):
    """Index the corpus in ``shards`` tasks and gather them like the runner does."""
    import os

    corpus = art(Passages, PASSAGES)
    enc = art(Model, str(models["enc"]))
    if shards == 1:
        return art(Embeddings, index(corpus, enc, cfg, ctx("index")))
    gathered = ctx("gather").workdir / "gathered"
    gathered.mkdir(parents=True)
    bounds = np.linspace(0, len(PASSAGES), shards + 1).astype(int)
    for s in range(shards):
        part = Passages(corpus.ref, int(bounds[s]), int(bounds[s + 1]))
        shard = art(Embeddings, index(part, enc, cfg, ctx("index", s, shards)))
        os.symlink(shard.path, gathered / f"shard-{s:05d}")
    return Embeddings(write_artifact(str(gathered), Embeddings, gathered.parent / "g", "t.x", "k"))


def retrieved_rows(k=6):
    rows = []
    for q in QUESTIONS:
        i = int(q["id"][1:])
        ctxs = [{**PASSAGES[(i + j) % 40], "score": 1.0 - j / 10} for j in range(k)]
        rows.append({**q, "ctxs": ctxs})
    return rows


def prompt_file(name: str, recipe: str = "dynamicrag"):
    """An input handle on a shipped prompt file (``conf/prompts/<recipe>/<name>.yaml``), of the
    prompt type the stages that read it declare (as the runner makes it), so a stage whose type
    promises a placeholder it does not fill fails here (``PromptFile.fills``)."""
    from orchestrator.api import File
    from stages.dpa_rag.schemas import PrealignPrompt, QueryAugmentPrompt
    from stages.dynamicrag.schemas import JudgePrompt, RerankerPrompt
    from stages.rag_instruct.schemas import SynthesisPrompt
    from stages.schemas import GeneratorPrompt

    types = {"dynamicrag": {"reranker": RerankerPrompt, "generator": GeneratorPrompt,
                            "judge": JudgePrompt},
             "common": {"rag": GeneratorPrompt},
             "dpa_rag": {"prealign": PrealignPrompt},
             "rag_instruct": {"wrappers": File}}
    kind = types.get(recipe, {}).get(name) or {"dpa_rag": QueryAugmentPrompt,
                                               "rag_instruct": SynthesisPrompt}[recipe]
    path = Path(__file__).resolve().parents[2] / "conf" / "prompts" / recipe / f"{name}.yaml"
    return kind(Ref("file", kind.type_name(), "hash", [str(path)]))


def fake_endpoint(monkeypatch, answer):
    """Replace the endpoint client the stages open with one whose ``chat(conversations,
    **params)`` returns ``[ChatReply([answer(conversation, params)]) ...]`` (a ChatReply
    ``answer`` returns is taken as it is, finish reasons and all): for testing what a
    stage asks and does with the replies (the client itself is tested on a real server in
    tests/stages/lib/endpoint/). Returns the list of calls, ``(len(conversations), params)``."""
    import stages.lib.endpoint as endpoint
    from stages.lib.endpoint import ChatReply

    class FakeClient:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def chat(self, conversations, **params):
            calls.append((len(conversations), params))
            replies = [answer(c, params) for c in conversations]
            return [r if isinstance(r, ChatReply) else ChatReply([r]) for r in replies]

    calls: list[tuple[int, dict]] = []
    monkeypatch.setattr(endpoint, "open_client", lambda cfg, cache_dir, **kw: FakeClient())
    return calls


def run_recipe(recipe: Path, tmp_path: Path, monkeypatch, *overrides: str) -> Path:
    """``rag run recipe`` in this process from ``tmp_path``, with its own runs directory and
    cache; asserts exit 0 and returns the runs directory (pipeline tests)."""
    from tests.conftest import rag

    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(runs / "cache"))
    assert rag("run", str(recipe), *overrides, "--no-progress", runs=runs) == 0
    return runs


def artifact_rows(runs: Path, name: str) -> list[dict]:
    """The rows of the latest run's table artifact ``name`` (``step.output``), every part."""
    import pyarrow.parquet as pq

    parts = sorted((runs / "latest" / "artifacts" / name).rglob("*.parquet"))
    assert parts, f"{name}: no Parquet part"
    return [row for part in parts for row in pq.read_table(part).to_pylist()]
