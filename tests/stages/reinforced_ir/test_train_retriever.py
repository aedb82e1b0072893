"""The retriever's training on groups where mining found no negative (a small corpus: the paper's
fallback ranks 30-200 lie past its end). Such a group used to be one passage long, which shifted
every later group's columns in the batch's score matrix (silently wrong targets, or an
IndexError): it is now left out, and a step where no group has a negative says what to change."""

from __future__ import annotations

import logging

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
