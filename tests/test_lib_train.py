"""stages/lib/train.py: SFT/DPO with TRL on tiny random models (CPU, a few seconds each)."""

from __future__ import annotations

import json
import logging

import pytest

from orchestrator.errors import ConfigError, DataError
from stages.lib.train import dpo_train, last_checkpoint, launch_command, sft_train

TEXTS = [f"Query: question {i} Retrieved Content: 1. Topic: t{i} Content: c{i}" for i in range(8)]


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def make_logger(name: str) -> tuple[logging.Logger, ListHandler]:
    logger = logging.getLogger(f"test_lib_train.{name}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = ListHandler()
    logger.handlers[:] = [handler]
    return logger, handler


def chat_rows(n: int = 16) -> list[dict]:
    return [{"id": f"q{i}", "task": "reranker" if i % 2 else "generator",
             "messages": [{"role": "system", "content": "You are an expert. Answer briefly."},
                          {"role": "user", "content": f"Query: question {i}"},
                          {"role": "assistant", "content": f"[{i % 3 + 1}], [2]"}]}
            for i in range(n)]


def pref_rows(n: int = 8) -> list[dict]:
    return [{"id": f"p{i}", "task": "reranker",
             "prompt": [{"role": "system", "content": "You are an expert."},
                        {"role": "user", "content": f"Query: question {i}"}],
             "chosen": [{"role": "assistant", "content": f"[{i % 3 + 1}]"}],
             "rejected": [{"role": "assistant", "content": "None"}]}
            for i in range(n)]


def state_dict(path):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(str(path)).state_dict()


def n_changed(a: dict, b: dict) -> int:
    import torch
    assert sorted(a) == sorted(b)
    return sum(not torch.equal(a[k], b[k]) for k in a)


FAST = dict(lr=1e-2, per_device_batch_size=2, grad_accum=1, max_length=64, warmup_ratio=0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # 49 s instead of 10 s with 2 threads


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from stages.lib.tiny import tiny_causal_lm
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm", texts=TEXTS)


@pytest.fixture(scope="module")
def sft_full(tiny_lm, tmp_path_factory):
    """Full fine-tuning, 6 steps; shared by the SFT and DPO tests."""
    logger, handler = make_logger("sft_full")
    out = tmp_path_factory.mktemp("sft_full") / "model"
    stats = sft_train(tiny_lm, chat_rows(), out, lora=False, max_steps=6, logger=logger, **FAST)
    return out, stats, handler.messages


def test_sft_lora_merges_into_a_plain_checkpoint(tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger, handler = make_logger("sft_lora")
    out = tmp_path / "model"
    stats = sft_train(tiny_lm, chat_rows(), out, lora=True, lora_r=8, lora_alpha=16,
                      lora_dropout=0.0, max_steps=8, logger=logger, **FAST)
    assert stats["steps"] == 8 and stats["lora"] and stats["loss_on"] == "completion"
    assert 0 < stats["trainable_params"] < stats["total_params"]
    assert stats["last_loss"] < stats["first_loss"]
    step_lines = [m for m in handler.messages if m.startswith("sft step ")]
    assert len(step_lines) == 8 and "loss" in step_lines[0] and "lr" in step_lines[0]
    # a plain checkpoint: no PEFT wrapper needed to load it, same parameter names as the input
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert not hasattr(model, "peft_config")
    assert n_changed(state_dict(tiny_lm), model.state_dict()) > 0
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and (out / "adapter" / "adapter_model.safetensors").is_file()
    assert AutoTokenizer.from_pretrained(str(out)).chat_template == \
        AutoTokenizer.from_pretrained(str(tiny_lm)).chat_template


def test_sft_full_finetuning_changes_every_weight(tiny_lm, sft_full):
    out, stats, messages = sft_full
    assert stats["steps"] == 6 and not stats["lora"]
    assert stats["trainable_params"] == stats["total_params"]
    assert stats["last_loss"] < stats["first_loss"]
    assert [s for s, _ in stats["losses"]] == [1, 2, 3, 4, 5, 6]
    before, after = state_dict(tiny_lm), state_dict(out)
    assert n_changed(before, after) == len(before)
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    assert any("full fine-tuning" in m for m in messages)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_dpo_from_sft_output(sft_full, tmp_path, lora):
    import math

    sft_out = sft_full[0]
    logger, handler = make_logger(f"dpo_{lora}")
    out = tmp_path / "model"
    extra = dict(lora=True, lora_r=8, lora_dropout=0.0, max_prompt_length=16) if lora else {}
    rows = pref_rows() + [{**pref_rows(1)[0], "id": "same", "rejected": pref_rows(1)[0]["chosen"]}]
    stats = dpo_train(sft_out, rows, out, beta=0.1, max_steps=4, logger=logger, **FAST, **extra)
    assert stats["steps"] == 4 and stats["identical_pairs_dropped"] == 1
    assert all(math.isfinite(v) for _, v in stats["losses"])
    assert abs(stats["first_loss"] - math.log(2)) < 1e-3   # policy == reference at step 1
    assert len(stats["reward_margins"]) == 4
    assert ("disabled LoRA adapter" in stats["reference"]) == lora
    assert any("margin" in m and m.startswith("dpo step ") for m in handler.messages)
    assert n_changed(state_dict(sft_out), state_dict(out)) > 0
    assert (out / "adapter").is_dir() == lora


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

    kw = dict(lora=False, max_steps=4, save_steps=2, save_total_limit=2, **FAST)
    ckpt = tmp_path / "scratch"
    crash = CrashOnce(at=3)
    logger, handler = make_logger("resume")
    with pytest.raises(RuntimeError, match="simulated crash"):
        sft_train(tiny_lm, chat_rows(), tmp_path / "out", checkpoint_dir=ckpt, logger=logger,
                  callbacks=[crash], **kw)
    assert last_checkpoint(ckpt).name == "checkpoint-2"
    handler.messages.clear()

    stats = sft_train(tiny_lm, chat_rows(), tmp_path / "out", checkpoint_dir=ckpt,
                      logger=logger, callbacks=[crash], **kw)
    assert stats["resumed_from_step"] == 2 and stats["steps"] == 4
    assert any("resuming from checkpoint-2" in m for m in handler.messages)
    steps_run = [int(m.split()[2].split("/")[0]) for m in handler.messages
                 if m.startswith("sft step ")]
    assert steps_run == [3, 4]               # steps 1-2 were not redone
    assert [s for s, _ in stats["losses"]] == [1, 2, 3, 4]   # history restored from the checkpoint

    # the resumed run ends with exactly the weights of an uninterrupted one
    ref = sft_train(tiny_lm, chat_rows(), tmp_path / "ref", checkpoint_dir=tmp_path / "s2", **kw)
    assert ref["losses"] == stats["losses"]
    a, b = state_dict(tmp_path / "out"), state_dict(tmp_path / "ref")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_checkpoints_of_other_settings_are_not_resumed(tiny_lm, tmp_path):
    kw = dict(lora=False, max_steps=2, save_steps=2, **FAST)
    ckpt = tmp_path / "scratch"
    sft_train(tiny_lm, chat_rows(), tmp_path / "a", checkpoint_dir=ckpt, **kw)
    assert last_checkpoint(ckpt).name == "checkpoint-2"
    (ckpt / "checkpoint-4").mkdir()          # half-written: no trainer_state.json
    logger, handler = make_logger("fingerprint")
    stats = sft_train(tiny_lm, chat_rows(), tmp_path / "b", checkpoint_dir=ckpt,
                      logger=logger, **{**kw, "lr": 5e-3})
    assert stats["resumed_from_step"] == 0
    assert any("different data or settings" in m for m in handler.messages)
    # same settings again: finished checkpoint is resumed, nothing is retrained
    stats = sft_train(tiny_lm, chat_rows(), tmp_path / "c", checkpoint_dir=ckpt,
                      **{**kw, "lr": 5e-3})
    assert stats["resumed_from_step"] == 2 and stats["steps"] == 2


def test_sft_data_and_config_errors(tiny_lm, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError, match="empty"):
        sft_train(tiny_lm, [], out)
    no_answer = [{"id": "x", "messages": [{"role": "user", "content": "hi"}]}]
    with pytest.raises(DataError, match="id 'x'.*no assistant turn"):
        sft_train(tiny_lm, no_answer, out)
    trailing_user = [{"id": "y", "messages": chat_rows(1)[0]["messages"] + [
        {"role": "user", "content": "and?"}]}]
    with pytest.raises(DataError, match="last message must be the assistant"):
        sft_train(tiny_lm, trailing_user, out)
    bad_role = [{"id": "z", "messages": [{"role": "bot", "content": "x"}]}]
    with pytest.raises(DataError, match="role 'bot'"):
        sft_train(tiny_lm, bad_role, out)
    with pytest.raises(DataError, match="missing field 'messages'"):
        sft_train(tiny_lm, [{"id": "w", "text": "hello"}], out)
    with pytest.raises(ConfigError, match="generation"):
        sft_train(tiny_lm, chat_rows(), out, loss_on="assistant")
    with pytest.raises(ConfigError, match="max_steps"):
        sft_train(tiny_lm, chat_rows(), out, max_steps=0)
    with pytest.raises(ConfigError, match="warmup_ratio"):
        sft_train(tiny_lm, chat_rows(), out, warmup_ratio=1.5)
    with pytest.raises(DataError, match="every one of the 16 examples was dropped"):
        sft_train(tiny_lm, chat_rows(), out, max_length=4, max_steps=1)
    assert not out.exists()


def test_dpo_data_errors(tiny_lm, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError, match="empty"):
        dpo_train(tiny_lm, [], out)
    row = pref_rows(1)[0]
    with pytest.raises(DataError, match="identical"):
        dpo_train(tiny_lm, [{**row, "rejected": row["chosen"]}], out)
    with pytest.raises(DataError, match="missing field 'rejected'"):
        dpo_train(tiny_lm, [{k: v for k, v in row.items() if k != "rejected"}], out)
    with pytest.raises(DataError, match="must end with a user turn"):
        dpo_train(tiny_lm, [{**row, "prompt": row["prompt"] + row["chosen"]}], out)
    with pytest.raises(ConfigError, match="beta"):
        dpo_train(tiny_lm, [row], out, beta=0)


def test_launch_command():
    assert launch_command(1, ["step.py", "--a", "1"], python="py") == ["py", "step.py", "--a", "1"]
    assert launch_command(1, ["pkg.mod"], module=True, python="py") == ["py", "-m", "pkg.mod"]
    argv = launch_command(4, ["pkg.mod", "--x"], module=True, main_process_port=29555,
                          python="py")
    assert argv[:3] == ["py", "-m", "accelerate.commands.launch"]
    assert argv[argv.index("--num_processes") + 1] == "4" and "--multi_gpu" in argv
    assert argv[argv.index("--main_process_port") + 1] == "29555"
    assert argv[-3:] == ["--module", "pkg.mod", "--x"]
    ds = launch_command(8, ["s.py"], deepspeed_config="/cfg/zero3.json", python="py")
    assert "--use_deepspeed" in ds and "--multi_gpu" not in ds
    assert ds[ds.index("--deepspeed_config_file") + 1] == "/cfg/zero3.json"
    with pytest.raises(ConfigError):
        launch_command(0, ["s.py"])


def test_sft_and_dpo_stages(tiny_lm, tmp_path):
    """The stage functions: table in, checkpoint dir out, scratch for resume, task filter."""
    from orchestrator.api import StageContext
    from orchestrator.artifacts import Ref, write_artifact
    from stages.dpo import DpoConfig, dpo
    from stages.schemas import Chat, Model, Preferences
    from stages.sft import SftConfig, sft

    def table(cls, rows, name):
        return cls(write_artifact(rows, cls, tmp_path / name, f"test.{name}", "key"))

    def ctx(step):
        return StageContext(step, 0, 1, tmp_path / f"work-{step}", tmp_path / f"scratch-{step}",
                            make_logger(step)[0])

    base = Model(Ref("dir", Model.type_name(), "h", [str(tiny_lm)]))
    chat = table(Chat, chat_rows(8), "chat")
    out = sft(chat, base, SftConfig(lr=1e-2, max_steps=2, max_length=64, save_steps=1),
              ctx("sft"))
    stats = json.loads((out / "training_stats.json").read_text())
    assert stats["steps"] == 2 and stats["tasks"] == {"generator": 4, "reranker": 4}
    assert last_checkpoint(tmp_path / "scratch-sft" / "trainer").name == "checkpoint-2"

    prefs = [{**r, "task": "generator" if i < 2 else "reranker"} for i, r in enumerate(pref_rows())]
    sft_model = Model(write_artifact(out, Model, tmp_path / "sft-model", "sft.out", "key"))
    dpo_out = dpo(table(Preferences, prefs, "prefs"), sft_model,
                  DpoConfig(tasks=["reranker"], lr=1e-2, max_steps=2, max_length=64,
                            per_device_batch_size=2, grad_accum=1), ctx("dpo"))
    stats = json.loads((dpo_out / "training_stats.json").read_text())
    assert stats["pairs_by_task"] == {"reranker": 6} and stats["num_examples"] == 6
    with pytest.raises(DataError, match="no preference pair has a task in"):
        dpo(table(Preferences, prefs, "prefs2"), sft_model, DpoConfig(tasks=["judge"]),
            ctx("dpo2"))


GENERATION_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\\n' }}{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.mark.parametrize("loss_on", ["all", "assistant"])
def test_sft_other_loss_masks(tiny_lm, tmp_path, loss_on):
    import shutil

    from transformers import AutoTokenizer

    model = tmp_path / "lm"
    shutil.copytree(tiny_lm, model)
    if loss_on == "assistant":   # a template with {% generation %} markers
        tok = AutoTokenizer.from_pretrained(str(model))
        tok.chat_template = GENERATION_TEMPLATE
        tok.save_pretrained(str(model))
    rows = chat_rows(4)
    rows[0]["messages"] = rows[0]["messages"] + [{"role": "user", "content": "more?"},
                                                 {"role": "assistant", "content": "[3]"}]
    stats = sft_train(model, rows, tmp_path / "out", loss_on=loss_on, max_steps=2, **FAST)
    assert stats["loss_on"] == loss_on and stats["steps"] == 2 and stats["num_examples"] == 4
