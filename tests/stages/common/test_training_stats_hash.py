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


PAIRS = [{"id": f"p{i}", "task": "generator",
          "prompt": [{"role": "user", "content": f"Query: question {i}"}],
          "chosen": [{"role": "assistant", "content": f"[{i % 3 + 1}]"}],
          "rejected": [{"role": "assistant", "content": "None"}]} for i in range(4)]


def test_dpo_from_the_same_model_at_another_path_keeps_the_hash(tmp_path):
    """Review 44, finding 4: DPO's ``reference`` entry named the input model's path, so the same
    weights trained from a byte-identical model under another cache root got another hash."""
    import shutil

    from stages.common.dpo import DpoConfig, dpo
    from stages.lib.testing.tiny import tiny_causal_lm
    from stages.schemas import Preferences

    first = tiny_causal_lm(tmp_path / "cache-a" / "lm")
    other = shutil.copytree(first, tmp_path / "cache-b" / "lm")
    prefs = Preferences(write_artifact(PAIRS, Preferences, tmp_path / "p", "test.p", "key"))
    cfg = DpoConfig(lr=1e-2, max_steps=1, max_length=64, per_device_batch_size=2, grad_accum=1)
    hashes = []
    for n, base in enumerate((first, other)):
        ctx = StageContext("dpo", 0, 1, tmp_path / f"work-{n}", tmp_path / f"scratch-{n}",
                           logging.getLogger("test.dpo"))
        out = dpo(prefs, Model(Ref("dir", Model.type_name(), "h", [str(base)])), cfg, ctx)
        hashes.append(write_artifact(out, Model, tmp_path / f"out-{n}", "dpo.m", "k").content_hash)
    stats = json.loads((tmp_path / "out-0" / "data" / "training_stats.json").read_text())
    assert stats["reference"] == "frozen copy of the input model (second model in memory)"
    assert hashes[0] == hashes[1]
