"""The retriever's training on groups where mining found no negative (a small corpus: the paper's
fallback ranks 30-200 lie past its end). Such a group used to be one passage long, which shifted
every later group's columns in the batch's score matrix (silently wrong targets, or an
IndexError): it is now left out, and a step where no group has a negative says what to change."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from orchestrator.api import DataError
from stages.reinforced_ir.embed import EncoderConfig
from stages.reinforced_ir.schemas import RetrieverData
from stages.reinforced_ir.train_retriever import RetrieverTrainConfig, train_retriever
from stages.schemas import Model
from tests.stages.conftest import PASSAGES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _groups(n, negatives):
    texts = [p["text"] for p in PASSAGES]
    return [{"id": f"g{i}", "query": f"Where was Entity {i} born?", "augmentation": "a city",
             "pos": [texts[i]], "neg": texts[i + 1:i + 1 + negatives(i)], "neg_answer": [],
             "pos_scores": [], "neg_scores": []} for i in range(n)]


def _cfg(**kw):
    return RetrieverTrainConfig(encoder=EncoderConfig(pooling="mean", normalize=True),
                                batch_size=2, group_size=4, max_steps=2, **kw)


def test_groups_without_negatives_are_left_out(model_env, models, caplog):
    art, ctx = model_env
    rows = _groups(6, lambda i: 0 if i % 3 == 0 else 3)       # g0 and g3 have no negative
    with caplog.at_level(logging.WARNING):
        out = train_retriever(art(RetrieverData, rows), art(Model, models["enc"]), _cfg(),
                              ctx("retriever_1"))
    assert (out / "model.safetensors").exists()
    assert "2 of 6 groups have no positive or no negative" in caplog.text


def test_no_group_with_a_negative_names_the_mining_fallback(model_env, models):
    art, ctx = model_env
    with pytest.raises(DataError, match="none of the 4 groups has a negative") as err:
        train_retriever(art(RetrieverData, _groups(4, lambda i: 0)), art(Model, models["enc"]),
                        _cfg(), ctx("retriever_1"))
    assert "fallback_lo" in err.value.hint


def test_too_few_groups_for_a_batch_names_the_step(model_env, models):
    art, ctx = model_env
    with pytest.raises(DataError, match="1 training groups, fewer than batch_size 2") as err:
        train_retriever(art(RetrieverData, _groups(1, lambda i: 3)), art(Model, models["enc"]),
                        _cfg(), ctx("retriever_2"))
    assert "step 'retriever_2'" in err.value.hint


def test_a_resumed_training_gives_the_uninterrupted_result(model_env, models, monkeypatch):
    """Killed after a checkpoint and rerun, the step trains to the same weights and writes the
    whole loss history. Before, the checkpoint held no RNG state (the encoder trains with
    dropout: the resumed steps drew other masks, other weights) and the history restarted at
    the resume step."""
    import json

    import torch
    from safetensors.torch import load_file

    from stages.reinforced_ir import bi_encoder

    art, ctx = model_env
    rows = _groups(6, lambda i: 3)
    cfg = replace(_cfg(save_steps=2, logging_steps=1), max_steps=4)
    whole = train_retriever(art(RetrieverData, rows), art(Model, models["enc"]), cfg,
                            ctx("retriever_1"))
    for leftover in (ctx("x").scratch).glob("*"):      # the finished run's checkpoint: not ours
        leftover.unlink()

    calls = {"n": 0}
    real = bi_encoder.step_loss

    def dies_at_step_3(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kw)

    monkeypatch.setattr(bi_encoder, "step_loss", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train_retriever(art(RetrieverData, rows), art(Model, models["enc"]), cfg,
                        ctx("retriever_1"))
    assert (ctx("x").scratch / "checkpoint.pt").is_file()
    monkeypatch.setattr(bi_encoder, "step_loss", real)
    torch.manual_seed(1234)                              # a fresh process: another RNG state
    resumed = train_retriever(art(RetrieverData, rows), art(Model, models["enc"]), cfg,
                              ctx("retriever_1"))
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = json.loads((resumed / "training_stats.json").read_text())["history"]
    assert [h["step"] for h in history] == [1, 2, 3, 4]
    assert history == json.loads((whole / "training_stats.json").read_text())["history"]


def test_a_checkpoint_cut_short_by_a_kill_is_not_fatal(model_env, models, monkeypatch, caplog):
    """``kill -9`` while the checkpoint was being written left a truncated ``checkpoint.pt``
    that every rerun failed to load (``PytorchStreamReader failed reading zip archive``), so
    the step could never finish. A checkpoint is now written beside and renamed into place, and
    one that cannot be read is logged and the training starts over."""
    import torch
    from safetensors.torch import load_file

    art, ctx = model_env
    rows = _groups(6, lambda i: 3)
    cfg = replace(_cfg(save_steps=2, logging_steps=1), max_steps=4)
    whole = train_retriever(art(RetrieverData, rows), art(Model, models["enc"]), cfg,
                            ctx("retriever_1"))
    ckpt = ctx("x").scratch / "checkpoint.pt"
    ckpt.write_bytes(b"PK\x03\x04 cut short")                # what the kill left
    with caplog.at_level(logging.WARNING):
        again = train_retriever(art(RetrieverData, rows), art(Model, models["enc"]), cfg,
                                ctx("retriever_1"))
    assert "cannot be read" in caplog.text and "training starts over" in caplog.text
    a, b = load_file(whole / "model.safetensors"), load_file(again / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)

    # a kill during the save itself leaves the previous checkpoint whole
    real_save = torch.save

    def killed_while_saving(obj, path):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt("killed")

    ckpt.unlink()
    monkeypatch.setattr(torch, "save", killed_while_saving)
    with pytest.raises(KeyboardInterrupt):
        train_retriever(art(RetrieverData, rows), art(Model, models["enc"]), cfg,
                        ctx("retriever_1"))
    monkeypatch.setattr(torch, "save", real_save)
    assert not ckpt.exists()
