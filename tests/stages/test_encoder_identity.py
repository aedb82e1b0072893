"""``index`` records its encoder in meta.json; ``retrieve`` warns (never refuses) when it encodes
questions with another encoder, unless ``dual_encoder`` says it is meant."""

import json
import logging

import pytest

from orchestrator.artifacts import Ref
from orchestrator.hashing import SourceMemo
from orchestrator.registry import REGISTRY
from stages.common.index import IndexConfig, index
from stages.common.retrieve import RetrieveConfig, retrieve
from stages.lib.testing.tiny import tiny_encoder
from stages.schemas import Embeddings, Model, Passages, Questions, Retrieved
from tests.stages.conftest import PASSAGES, QUESTIONS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WARNING = "the index was built with encoder"


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """Two tiny encoders of the same width (32) and tokenizer, different weights, as source
    handles carrying the content hash the orchestrator gives a source directory."""
    root = tmp_path_factory.mktemp("encoders")
    texts = [p["text"] for p in PASSAGES] + [q["question"] for q in QUESTIONS]
    memo = SourceMemo(root / "memo.json")
    out = {}
    for name, seed in (("passage-enc", 0), ("question-enc", 1)):
        path = tiny_encoder(root / name, texts=texts, seed=seed)
        out[name] = Model(Ref("dir", Model.type_name(), memo.hash(path), [str(path)],
                              producer=f"source {name}"))
    return out


def _index(art, ctx, encoder, edit_meta=None):
    out = index(art(Passages, PASSAGES), encoder,
                IndexConfig(normalize=True, dtype="float32", batch_size=8), ctx("index"))
    if edit_meta:
        meta = json.loads((out / "meta.json").read_text())
        (out / "meta.json").write_text(json.dumps(edit_meta(meta)))
    return art(Embeddings, out)


def _retrieve(art, ctx, idx, encoder, **cfg):
    rows = retrieve(art(Questions, QUESTIONS), RetrieveConfig(k=3, **cfg), ctx("retrieve_eval"),
                    index=idx, encoder=encoder, corpus=art(Passages, PASSAGES))
    return art(Retrieved, rows).rows()


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and WARNING in r.getMessage()]


def test_index_records_its_encoder(model_env, encoders):
    art, ctx = model_env
    enc = encoders["passage-enc"]
    meta = json.loads((_index(art, ctx, enc).path / "meta.json").read_text())
    assert meta["encoder_name"] == "passage-enc"
    assert meta["encoder_hash"] == enc.ref.content_hash


def test_another_encoder_of_the_same_width_is_a_warning_naming_both(model_env, encoders,
                                                                   caplog):
    art, ctx = model_env
    idx = _index(art, ctx, encoders["passage-enc"])
    with caplog.at_level(logging.WARNING):
        rows = _retrieve(art, ctx, idx, encoders["question-enc"])
    assert len(rows) == len(QUESTIONS)                        # a warning, not a refusal
    [message] = _warnings(caplog)
    built, asked = (encoders[n].ref.content_hash[:8] for n in ("passage-enc", "question-enc"))
    assert message == (
        f"step 'retrieve_eval': the index was built with encoder passage-enc [{built}] but "
        f"questions are encoded with question-enc [{asked}]; wire the same encoder into index "
        "and retrieve, or set dual_encoder: true if this is a dual encoder on purpose")


def test_same_encoder_or_dual_encoder_is_silent(model_env, encoders, caplog):
    art, ctx = model_env
    idx = _index(art, ctx, encoders["passage-enc"])
    with caplog.at_level(logging.WARNING):
        _retrieve(art, ctx, idx, encoders["passage-enc"])
        _retrieve(art, ctx, idx, encoders["question-enc"], dual_encoder=True)
    assert _warnings(caplog) == []


def test_an_index_that_names_no_encoder_is_silent(model_env, encoders, caplog):
    """An index built before meta.json named its encoder, or imported (no encoder at all)."""
    art, ctx = model_env
    drop = ("encoder_name", "encoder_hash")
    idx = _index(art, ctx, encoders["passage-enc"],
                 edit_meta=lambda m: {k: v for k, v in m.items() if k not in drop})
    with caplog.at_level(logging.WARNING):
        _retrieve(art, ctx, idx, encoders["question-enc"])
    assert _warnings(caplog) == []


def test_a_step_output_encoder_is_named_by_its_step(model_env, encoders, tmp_path):
    """A model a step wrote lives in its cache entry's ``data/``: the name is the step's."""
    from stages.common.index import encoder_identity

    src = encoders["passage-enc"]
    data = tmp_path / "entry" / "data"
    data.mkdir(parents=True)
    config = json.loads((src.path / "config.json").read_text())
    (data / "config.json").write_text(json.dumps({**config, "_name_or_path": "org/base-enc"}))
    got = encoder_identity(Model(Ref("dir", Model.type_name(), "h", [str(data)],
                                     producer="train_retriever.model")))
    assert got == {"encoder_name": "train_retriever.model (org/base-enc)", "encoder_hash": "h"}


def test_dual_encoder_is_not_in_the_cache_key():
    """It only silences a warning: setting it recomputes nothing."""
    assert "dual_encoder" in REGISTRY["retrieve"].nonsemantic_fields()


def test_shards_of_one_index_agree_on_the_encoder(model_env, encoders):
    """A sharded index step writes the same identity in every shard (read_meta checks
    that they agree)."""
    import os

    from stages.lib.models.search import read_meta

    art, ctx = model_env
    corpus, enc = art(Passages, PASSAGES), encoders["passage-enc"]
    gathered = ctx("gather").workdir / "gathered"
    gathered.mkdir(parents=True)
    for s, (lo, hi) in enumerate(((0, 20), (20, 40))):
        shard = index(Passages(corpus.ref, lo, hi), enc, IndexConfig(dtype="float32"),
                      ctx("index", s, 2))
        os.symlink(shard, gathered / f"shard-{s:05d}")
    assert read_meta(gathered)["encoder_hash"] == enc.ref.content_hash
