"""stages/lib/train/lm_head.py: on a CPU, TRL's fused LM head projects the labelled positions only,
with the same loss and gradients; SFT and DPO runs on a CPU use it."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from packaging.version import Version

from stages.lib.train import DpoConfig, SftConfig, TrainHooks, dpo_train, sft_train
from stages.lib.train.lm_head import labelled_positions_only
from tests.stages.lib.train.conftest import FAST, chat_rows, pref_rows

# TRL 1.16 is the first whose fused LM head has the switch (1.15 has the head, 1.14, the newest
# for Python 3.10, neither). A later TRL without it fails these tests: a rename must be noticed.
pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(Version(version("trl")) < Version("1.16"),
                                 reason=f"TRL {version('trl')} has no switch for its LM head")]


@pytest.fixture
def projected(monkeypatch):
    """The number of positions each call of TRL's fused LM head projects."""
    from trl.trainer import utils

    kernel, sizes = utils._ChunkedLogProbFunction, []

    class Counting:
        @staticmethod
        def apply(hidden, *args):
            sizes.append(hidden.shape[0])
            return kernel.apply(hidden, *args)

    monkeypatch.setattr(utils, "_ChunkedLogProbFunction", Counting)
    return sizes


def _loss_and_grads(model, batch):
    import torch

    model.zero_grad()
    out = model(**batch, fused_lm_head=True, use_cache=False)
    out.loss.backward()
    return out.loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])


def test_same_loss_and_gradients_from_the_labelled_positions_only(tiny_lm, projected):
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = AutoModelForCausalLM.from_pretrained(str(tiny_lm))
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    torch.manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (3, 20))
    labels = torch.full_like(ids, -100)
    labels[:, -4:] = ids[:, -4:]
    labels[0, -4:-2] = -100                        # 10 labelled positions of 3 x 19
    batch = dict(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)

    loss, grads = _loss_and_grads(model, batch)
    with labelled_positions_only() as switched:
        compact_loss, compact_grads = _loss_and_grads(model, batch)
    again, _ = _loss_and_grads(model, batch)

    assert switched
    assert projected == [3 * 19, 10, 3 * 19]       # every position, the labelled, every again
    assert torch.allclose(loss, compact_loss) and torch.equal(loss, again)
    assert torch.allclose(grads, compact_grads, atol=1e-6)


def test_sft_and_dpo_on_a_cpu_project_the_labelled_positions_only(tiny_lm, tmp_path,
                                                                  projected, monkeypatch):
    import contextlib

    from trl.trainer import utils

    before = utils._use_triton
    cfg = dict(lora=True, lora_r=4, lora_alpha=8, max_steps=1, **FAST)

    def sizes() -> tuple[list[int], list[int]]:
        sft_train(tiny_lm, chat_rows(2), tmp_path / "sft", SftConfig(**cfg), TrainHooks())
        sft, projected[:] = list(projected), []
        dpo_train(tmp_path / "sft", pref_rows(2), tmp_path / "dpo", DpoConfig(**cfg),
                  TrainHooks())
        dpo, projected[:] = list(projected), []
        return sft, dpo

    sft, dpo = sizes()
    assert utils._use_triton is before             # switched back after each run
    monkeypatch.setattr("stages.lib.train.finetune.labelled_positions_only",
                        contextlib.nullcontext)
    sft_every, dpo_every = sizes()
    assert sft and dpo and len(sft) == len(sft_every) and len(dpo) == len(dpo_every)
    assert sum(sft) < sum(sft_every) / 2 and sum(dpo) < sum(dpo_every) / 2, \
        (sft, sft_every, dpo, dpo_every)
