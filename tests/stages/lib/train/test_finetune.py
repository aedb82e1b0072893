"""stages/lib/train/finetune.py (and checkpoints.py): resume after a crash, skip a finished run."""

from __future__ import annotations

import pytest

from stages.lib.train import SftConfig, TrainHooks, last_checkpoint, sft_train
from tests.stages.lib.train.conftest import FAST, chat_rows, make_logger, state_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CrashOnce:
    """A TrainerCallback raising after optimizer step ``at``, the first time only."""

    def __new__(cls, at: int):
        from transformers import TrainerCallback

        class _Crash(TrainerCallback):
            fired = False

            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == at and not self.fired:
                    self.fired = True
                    raise RuntimeError("simulated crash")

        return _Crash()


def test_resume_after_crash_continues_from_last_checkpoint(tiny_lm, tmp_path):
    import torch

    cfg = SftConfig(lora=False, max_steps=4, save_steps=2, save_total_limit=2, **FAST)
    ckpt = tmp_path / "scratch"
    logger, handler = make_logger("resume")
    hooks = TrainHooks(log=logger, checkpoint_dir=ckpt, callbacks=[CrashOnce(at=3)])
    with pytest.raises(RuntimeError, match="simulated crash"):
        sft_train(tiny_lm, chat_rows(), tmp_path / "out", cfg, hooks)
    assert last_checkpoint(ckpt).name == "checkpoint-2"
    handler.messages.clear()

    stats = sft_train(tiny_lm, chat_rows(), tmp_path / "out", cfg, hooks)
    assert stats["resumed_from_step"] == 2 and stats["steps"] == 4
    assert any("resuming from checkpoint-2" in m for m in handler.messages)
    steps_run = [int(m.split()[2].split("/")[0]) for m in handler.messages
                 if m.startswith("sft step ")]
    assert steps_run == [3, 4]               # steps 1-2 were not redone
    assert [s for s, _ in stats["losses"]] == [1, 2, 3, 4]   # history restored from the checkpoint

    # the resumed run ends with exactly the weights of an uninterrupted one
    ref = sft_train(tiny_lm, chat_rows(), tmp_path / "ref", cfg,
                    TrainHooks(checkpoint_dir=tmp_path / "s2"))
    assert ref["losses"] == stats["losses"]
    a, b = state_dict(tmp_path / "out"), state_dict(tmp_path / "ref")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_half_written_checkpoint_is_dropped_and_a_finished_run_is_not_retrained(tiny_lm,
                                                                                tmp_path):
    cfg = SftConfig(lora=False, max_steps=2, save_steps=2, **FAST)
    ckpt = tmp_path / "scratch"
    sft_train(tiny_lm, chat_rows(), tmp_path / "a", cfg, TrainHooks(checkpoint_dir=ckpt))
    assert last_checkpoint(ckpt).name == "checkpoint-2"
    (ckpt / "checkpoint-4").mkdir()          # half-written: no trainer_state.json
    (ckpt / "final").mkdir()                 # a staging save left by a crash while exporting
    logger, handler = make_logger("finished")
    stats = sft_train(tiny_lm, chat_rows(), tmp_path / "b", cfg,
                      TrainHooks(log=logger, checkpoint_dir=ckpt))
    assert stats["resumed_from_step"] == 2 and stats["steps"] == 2
    assert any("deleting incomplete checkpoint checkpoint-4" in m for m in handler.messages)
    assert any("already holds the finished run" in m for m in handler.messages)
    assert not (ckpt / "checkpoint-4").exists() and not (ckpt / "final").exists()
    assert state_dict(tmp_path / "a").keys() == state_dict(tmp_path / "b").keys()


def test_other_ranks_train_but_do_not_write_the_output(tiny_lm, tmp_path):
    """``is_main=False`` (a non-zero rank): the same training and stats, no out_dir."""
    cfg = SftConfig(lora=False, max_steps=1, **FAST)
    stats = sft_train(tiny_lm, chat_rows(4), tmp_path / "out", cfg, TrainHooks(is_main=False))
    assert stats["steps"] == 1 and stats["num_examples"] == 4
    assert not (tmp_path / "out").exists()


@pytest.mark.slow   # four processes; about a minute on two idle cores
def test_two_ranks_share_one_scratch_and_resume_together(tiny_lm, tmp_path):
    """Two CPU processes (gloo DDP) as ``accelerate launch`` would start them: both save into and
    resume from the one scratch directory; only rank 0 writes its output."""
    import json
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[4]
    script = Path(__file__).with_name("two_ranks.py")

    def launch(*extra):
        env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
        with socket.socket() as sock:   # a free port (torchrun's default 29500 may be taken)
            sock.bind(("127.0.0.1", 0))
            port = str(sock.getsockname()[1])
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                               "2", "--master_port", port, str(script), str(tiny_lm),
                               str(tmp_path), *extra], env=env, capture_output=True, text=True,
                              timeout=600)
        results = [json.loads(line[7:]) for line in proc.stdout.splitlines()
                   if line.startswith("RESULT ")]
        return proc, sorted(results, key=lambda r: r["rank"])

    proc, results = launch("3")
    assert proc.returncode != 0 and not results
    assert "simulated crash at step 3" in proc.stdout + proc.stderr
    ckpt = last_checkpoint(tmp_path / "scratch")
    assert ckpt.name == "checkpoint-2"
    assert {p.name for p in ckpt.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}

    proc, results = launch()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [(r["rank"], r["steps"], r["world_size"], r["resumed_from_step"]) for r in results] \
        == [(0, 4, 2, 2), (1, 4, 2, 2)]
    assert [s for s, _ in results[0]["losses"]] == [1, 2, 3, 4]
    assert (tmp_path / "out-rank0" / "config.json").is_file()
    assert not (tmp_path / "out-rank1").exists()
