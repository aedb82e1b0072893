"""``sft`` stage: chat table in, checkpoint out, trainer checkpoints in the step's scratch; only
the main process writes the stats."""

from __future__ import annotations

import json
import logging

import pytest

from orchestrator.api import StageContext
from orchestrator.artifacts import Ref, write_artifact
from stages.common.sft import SftConfig, sft
from stages.lib.train import last_checkpoint
from stages.schemas import Chat, Model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROWS = [{"id": f"q{i}", "task": "reranker" if i % 2 else "generator",
         "messages": [{"role": "user", "content": f"Query: question {i}"},
                      {"role": "assistant", "content": f"[{i % 3 + 1}]"}]} for i in range(8)]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from stages.lib.testing.tiny import tiny_causal_lm
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm")


def context(tmp_path, step: str, is_main: bool = True) -> StageContext:
    ctx = StageContext(step, 0, 1, tmp_path / f"work-{step}", tmp_path / f"scratch-{step}",
                       logging.getLogger(f"test.{step}"))
    if not is_main:
        ctx.is_main_process = False   # what the orchestrator says on ranks other than 0
    return ctx


def test_sft_stage(lm, tmp_path):
    chat = Chat(write_artifact(ROWS, Chat, tmp_path / "chat", "test.chat", "key"))
    model = Model(Ref("dir", Model.type_name(), "h", [str(lm)]))
    cfg = SftConfig(lr=1e-2, max_steps=2, max_length=64, save_steps=1)
    out = sft(chat, model, cfg, context(tmp_path, "sft"))
    stats = json.loads((out / "training_stats.json").read_text())
    assert stats["steps"] == 2 and stats["tasks"] == {"generator": 4, "reranker": 4}
    assert (out / "config.json").is_file()
    assert last_checkpoint(tmp_path / "scratch-sft" / "trainer").name == "checkpoint-2"

    other = sft(chat, model, cfg, context(tmp_path, "sft-rank1", is_main=False))
    assert not (other / "training_stats.json").exists() and not (other / "config.json").exists()


def test_a_deepspeed_config_is_not_used_on_the_cpu_and_says_so(lm, tmp_path, caplog):
    """A paper recipe tried on a CPU (gpus: 0) keeps its ZeRO-3 file: the step trains without
    it, with a warning, instead of stopping on 'deepspeed is not installed' after every step
    before it."""
    from tests.conftest import REPO

    chat = Chat(write_artifact(ROWS, Chat, tmp_path / "chat", "test.chat", "key"))
    model = Model(Ref("dir", Model.type_name(), "h", [str(lm)]))
    cfg = SftConfig(lr=1e-2, max_steps=1, max_length=64,
                    deepspeed=str(REPO / "conf" / "deepspeed" / "zero3_bf16.json"))
    with caplog.at_level(logging.WARNING):
        out = sft(chat, model, cfg, context(tmp_path, "sft"))
    assert json.loads((out / "training_stats.json").read_text())["steps"] == 1
    assert "runs on the CPU: deepspeed=" in caplog.text and "is not used" in caplog.text
