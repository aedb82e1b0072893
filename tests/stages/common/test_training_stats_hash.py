"""A model trained again to the same weights has the same content hash: ``training_stats.json``
holds what the run did, not its run time, scratch path or resume point (left from session 40:
a retrained model's new hash recomputed every step after it)."""

from __future__ import annotations

import json
import logging

import pytest

from orchestrator.api import StageContext
from orchestrator.artifacts import Ref, write_artifact
from stages.common.sft import SftConfig, sft
from stages.schemas import Chat, Model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROWS = [{"id": f"q{i}", "task": "generator",
         "messages": [{"role": "user", "content": f"Query: question {i}"},
                      {"role": "assistant", "content": f"answer {i}"}]} for i in range(4)]


def test_training_again_to_the_same_weights_keeps_the_hash(tmp_path):
    from stages.lib.testing.tiny import tiny_causal_lm

    base = tiny_causal_lm(tmp_path / "lm")
    chat = Chat(write_artifact(ROWS, Chat, tmp_path / "chat", "test.chat", "key"))
    model = Model(Ref("dir", Model.type_name(), "h", [str(base)]))
    cfg = SftConfig(lr=1e-2, max_steps=2, max_length=64, save_steps=10, seed=3)
    refs = []
    for run in ("first", "again"):
        ctx = StageContext("sft", 0, 1, tmp_path / f"work-{run}", tmp_path / f"scratch-{run}",
                           logging.getLogger("test.sft"))
        out = sft(chat, model, cfg, ctx)
        refs.append(write_artifact(out, Model, tmp_path / f"out-{run}", "sft.model", "key"))
    stats = json.loads((tmp_path / "out-first" / "data" / "training_stats.json").read_text())
    assert stats["steps"] == 2 and len(stats["losses"]) >= 1
    assert not {"runtime_s", "out_dir", "resumed_from_step"} & stats.keys()
    assert refs[0].content_hash == refs[1].content_hash
