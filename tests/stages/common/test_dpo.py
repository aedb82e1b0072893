"""``dpo`` stage: the task filter (a listed task without pairs is warned of), the stats, and a
loss type refused when the recipe is planned."""

from __future__ import annotations

import json
import logging

import pytest

from orchestrator.api import DataError, StageContext
from orchestrator.artifacts import Ref, write_artifact
from stages.common.dpo import DpoConfig, dpo
from stages.schemas import Model, Preferences
from tests.conftest import REPO, rag

PAIRS = [{"id": f"p{i}", "task": "generator" if i < 2 else "reranker",
          "prompt": [{"role": "user", "content": f"Query: question {i}"}],
          "chosen": [{"role": "assistant", "content": f"[{i % 3 + 1}]"}],
          "rejected": [{"role": "assistant", "content": "None"}]} for i in range(8)]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from stages.lib.testing.tiny import tiny_causal_lm
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm")


@pytest.mark.usefixtures("one_torch_thread")
def test_dpo_stage_keeps_the_pairs_of_its_tasks(lm, tmp_path, caplog):
    def ctx(step):
        return StageContext(step, 0, 1, tmp_path / f"work-{step}", tmp_path / f"scratch-{step}",
                            logging.getLogger(f"test.{step}"))

    prefs = Preferences(write_artifact(PAIRS, Preferences, tmp_path / "p", "test.p", "key"))
    model = Model(Ref("dir", Model.type_name(), "h", [str(lm)]))
    cfg = DpoConfig(tasks=["reranker", "generatr"], lr=1e-2, max_steps=2, max_length=64,
                    per_device_batch_size=2, grad_accum=1)
    out = dpo(prefs, model, cfg, ctx("dpo"))
    stats = json.loads((out / "training_stats.json").read_text())
    assert stats["pairs_by_task"] == {"reranker": 6} and stats["num_examples"] == 6
    assert stats["steps"] == 2 and stats["reference"].startswith("frozen copy")
    # a listed task without pairs (a typo) trains on less: said, with the closest task
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no preference pair has the task 'generatr' of steps.dpo.tasks (did you mean "
               "'generator'?)" in m for m in warned), warned
    with pytest.raises(DataError, match="no preference pair has a task in"):
        dpo(prefs, model, DpoConfig(tasks=["judge"]), ctx("dpo2"))


def test_a_misspelt_loss_type_is_refused_at_plan_time(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert rag("plan", "conf/dynamicrag_demo.yaml", "steps.dpo.loss_type=sigmodi",
               runs=tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "steps.dpo.loss_type" in err and "sigmodi" in err and "'sigmoid'" in err
