"""Fine-tuning of causal LMs for the RAG stages: SFT and DPO with TRL, resumable, LoRA or full.

Two entry points, both taking a Hugging Face checkpoint directory and plain row dicts (the
``Chat`` and ``Preferences`` tables of :mod:`stages.schemas`) and writing a plain full checkpoint:

- :func:`sft_train` -- TRL ``SFTTrainer`` on conversational rows ``{"messages": [...]}``.
- :func:`dpo_train` -- TRL ``DPOTrainer`` on conversational pairs ``{"prompt", "chosen", "rejected"}``.

Both render every example with the model's *own* chat template (``tokenizer.chat_template``),
the one inference uses, so training and inference cannot drift apart (LLaMA-Factory's most
reported problem, see docs/research).

Output layout (``out_dir``), identical for LoRA and full fine-tuning::

    out_dir/config.json, model*.safetensors, generation_config.json, tokenizer files
    out_dir/adapter/             # LoRA only: adapter_config.json + adapter_model.safetensors

With LoRA the adapter is merged into the base weights (``PeftModel.merge_and_unload``) so every
downstream stage loads any checkpoint with ``AutoModelForCausalLM.from_pretrained(out_dir)``;
the un-merged adapter is kept in ``out_dir/adapter``. The saved weights keep the dtype of the
input checkpoint (``save_dtype="auto"``), whatever precision training used.

Loss masking (SFT ``loss_on``)
------------------------------
``"completion"`` (default)
    Loss on the *last* assistant turn only (plus its end-of-turn token): each row is split into
    TRL's conversational prompt-completion form (prompt = every message before the last
    assistant turn, rendered with ``add_generation_prompt=True``). Works with any chat template
    whose prompt rendering is a prefix of the full rendering (ChatML/SmolLM2, Llama-3, Qwen...).
    This is LLaMA-Factory's default (``train_on_prompt: false``) used by DynamicRAG, whose SFT
    rows are single-turn. Earlier assistant turns of a multi-turn row are context, not targets.
``"assistant"``
    Loss on every assistant turn (TRL ``assistant_only_loss=True``). Needs a template with
    ``{% generation %}`` markers, or one TRL ships a training variant for (Llama-3, Qwen2.5/3,
    Gemma, Phi-3, ...; see ``trl.chat_template_utils.get_training_chat_template``). ChatML
    templates such as SmolLM2's have neither: a ConfigError says so before anything runs.
``"all"``
    Loss on every token, system and user turns included.

Resume
------
``checkpoint_dir`` is a persistent scratch directory (the stage passes ``ctx.scratch``). The
trainer saves ``checkpoint-<step>/`` there every ``save_steps`` optimizer steps and at the end,
keeping ``save_total_limit`` of them. Called again after a crash, training resumes from the
newest *complete* checkpoint (one with ``trainer_state.json``; a half-written newer one is
deleted): weights/adapter, optimizer, scheduler, RNG and data position are restored, so the
result matches an uninterrupted run. A fingerprint of the inputs and hyper-parameters is kept in
``checkpoint_dir/ragline-train.json``; checkpoints left by a run with a different fingerprint
are deleted instead of resumed. A run that crashed after its last step (while writing
``out_dir``) is not retrained: ``out_dir`` is written from its last checkpoint.
``checkpoint_dir=None`` trains without intermediate checkpoints.

The final weights are saved with ``Trainer.save_model`` into ``checkpoint_dir/final`` (DDP and
DeepSpeed gather there), then rank 0 loads them on CPU (merging the adapter into a fresh copy
of ``model_dir`` with LoRA) and writes ``out_dir``: one code path for every setup, at the cost
of one extra load and save of the weights (about a minute for an 8B model).

Multi-GPU
---------
Run the same call in every process started by ``accelerate launch`` / ``torchrun`` (see
:func:`launch_command`): ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` are picked up by
``transformers.TrainingArguments``, each process is placed on GPU ``LOCAL_RANK``, and the
trainer runs DDP, or DeepSpeed when ``deepspeed=`` names a config file (e.g. ZeRO-3 as in the
DynamicRAG paper; a ZeRO-3 config must set
``stage3_gather_16bit_weights_on_model_save: true``, checked up front). The effective batch is ``per_device_batch_size * grad_accum * world_size``.
Every rank must see the same ``rows`` and arguments; ``checkpoint_dir`` is taken from rank 0
(broadcast, so ranks handed different scratch directories still save into and resume from one;
it must be on a filesystem all ranks see, as on one node). Only rank 0 (global) writes the
fingerprint, the final staging save and ``out_dir``; ``out_dir`` of the other ranks stays empty.
They wait at barriers and return the same stats. Never call these functions from a
single process with several GPUs visible: ``Trainer`` would fall back to ``nn.DataParallel``,
which TRL's DPO rejects; give the process one GPU or use the launcher.

Memory: rows are tokenized in memory by every rank (``datasets.Dataset.from_list``, no cache
files); ``dataset_num_proc`` parallelises it. At the paper's scale (~100k rows of up to 8k
tokens) budget a few GB of host RAM per rank for the token ids.

Everything heavy (torch, transformers, trl, peft, datasets) is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FINGERPRINT_FILE = "ragline-train.json"
STAGING_DIR = "final"
LOSS_ON = ("completion", "assistant", "all")
ROLES = ("system", "user", "assistant", "tool")
# TRL 1.16 DPOTrainer loss types (it only rejects an unknown one at the first training step)
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair",
                  "sppo_hard", "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft",
                  "sigmoid_norm")

ProgressFn = Callable[[int, int], None]


# ---------------------------------------------------------------------------------------------
# public API


def sft_train(
    model_dir: str | Path,
    rows: Sequence[dict],
    out_dir: str | Path,
    *,
    lora: bool = False,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    target_modules: str | list[str] = "all-linear",
    lr: float = 1e-5,
    epochs: float = 3.0,
    max_steps: int = -1,
    per_device_batch_size: int = 2,
    grad_accum: int = 2,
    max_length: int | None = 8192,
    warmup_ratio: float = 0.1,
    lr_scheduler: str = "cosine",
    weight_decay: float = 0.0,
    seed: int = 42,
    loss_on: str = "completion",
    bf16: bool | None = None,
    dtype: str = "float32",
    save_dtype: str = "auto",
    gradient_checkpointing: bool | None = None,
    checkpoint_dir: str | Path | None = None,
    save_steps: int = 500,
    save_total_limit: int = 1,
    logging_steps: int = 1,
    logger: logging.Logger | None = None,
    progress: ProgressFn | None = None,
    deepspeed: str | Path | None = None,
    device: str | None = None,
    dataset_num_proc: int | None = None,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Supervised fine-tuning of the causal LM in ``model_dir`` on conversational ``rows``.

    Args:
        model_dir: a Hugging Face checkpoint directory with a tokenizer that has a chat template.
        rows: dicts with ``messages`` (a list of ``{"role", "content"}``; other keys such as
            ``id`` and ``task`` are ignored except in error messages).
        out_dir: where the final full checkpoint (and ``adapter/`` with LoRA) is written.
        lora: train a LoRA adapter (``lora_r``, ``lora_alpha``, ``lora_dropout``,
            ``target_modules``; ``"all-linear"`` = every linear layer except the LM head) and
            merge it; ``False`` = full fine-tuning (the DynamicRAG paper's setting).
        lr, epochs, max_steps, per_device_batch_size, grad_accum, warmup_ratio, lr_scheduler,
            weight_decay, seed: the usual optimizer settings; ``max_steps > 0`` overrides
            ``epochs``; ``warmup_ratio`` is a fraction of the total steps.
        max_length: tokens per example; longer examples keep their start (TRL ``keep_start``),
            examples whose prompt alone fills it are dropped (counted in the stats).
        loss_on: ``"completion"``, ``"assistant"`` or ``"all"`` (see the module docstring).
        bf16: bf16 mixed precision; ``None`` = on when a bf16-capable GPU is used.
        dtype: dtype the weights are loaded in for training (``"float32"``: fp32 master weights
            with bf16 autocast; ``"bfloat16"``: pure bf16, half the memory; ``"auto"``).
        save_dtype: dtype of the saved checkpoint; ``"auto"`` = the dtype of ``model_dir``.
        gradient_checkpointing: ``None`` = on for GPU, off on CPU.
        checkpoint_dir, save_steps, save_total_limit: resumable checkpoints (module docstring).
        logging_steps: loss/lr are logged to ``logger`` every that many optimizer steps.
        progress: optional ``progress(step, total_steps)`` called after every optimizer step.
        deepspeed: optional DeepSpeed JSON config path (used under ``accelerate launch``).
        device: ``"cuda"``/``"cpu"``; ``None`` = cuda when available.
        callbacks: extra ``transformers.TrainerCallback`` instances.

    Returns:
        Training stats: ``train_loss`` (mean logged loss over the whole run), ``first_loss``,
        ``last_loss``, ``losses`` (``[step, loss]`` pairs), ``steps``, ``max_steps``,
        ``resumed_from_step``, ``runtime_s`` (this call), ``num_examples``,
        ``dropped_examples``, ``trainable_params``, ``total_params``, ``lora``, ``loss_on``,
        ``world_size``, ``out_dir``.

    Raises:
        DataError: no rows, a row without an assistant turn, a malformed message, or every
            example dropped by ``max_length``.
        ConfigError: bad hyper-parameters, no chat template, ``loss_on="assistant"`` with a
            template that cannot mask assistant turns, a missing DeepSpeed config.
    """
    logger = logger or log
    if loss_on not in LOSS_ON:
        raise ConfigError(f"sft: loss_on must be one of {list(LOSS_ON)}, got {loss_on!r}")
    _check_common(lr=lr, epochs=epochs, max_steps=max_steps, batch=per_device_batch_size,
                  grad_accum=grad_accum, warmup_ratio=warmup_ratio, max_length=max_length,
                  save_steps=save_steps, lora=lora, lora_r=lora_r, deepspeed=deepspeed,
                  kind="sft")
    examples = _sft_examples(rows, loss_on)
    params = dict(kind="sft", lora=lora, lora_r=lora_r, lora_alpha=lora_alpha,
                  lora_dropout=lora_dropout, target_modules=target_modules, lr=lr,
                  epochs=epochs, max_steps=max_steps, per_device_batch_size=per_device_batch_size,
                  grad_accum=grad_accum, max_length=max_length, warmup_ratio=warmup_ratio,
                  lr_scheduler=lr_scheduler, weight_decay=weight_decay, seed=seed,
                  loss_on=loss_on, dtype=dtype)
    return _run("sft", model_dir, examples, out_dir, params, logger=logger, progress=progress,
                bf16=bf16, save_dtype=save_dtype, gradient_checkpointing=gradient_checkpointing,
                checkpoint_dir=checkpoint_dir, save_steps=save_steps,
                save_total_limit=save_total_limit, logging_steps=logging_steps,
                deepspeed=deepspeed, device=device, dataset_num_proc=dataset_num_proc,
                callbacks=callbacks)


def dpo_train(
    model_dir: str | Path,
    rows: Sequence[dict],
    out_dir: str | Path,
    *,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    lora: bool = False,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    target_modules: str | list[str] = "all-linear",
    lr: float = 5e-6,
    epochs: float = 1.0,
    max_steps: int = -1,
    per_device_batch_size: int = 1,
    grad_accum: int = 4,
    max_length: int | None = 8192,
    max_prompt_length: int | None = None,
    warmup_ratio: float = 0.1,
    lr_scheduler: str = "cosine",
    weight_decay: float = 0.0,
    seed: int = 42,
    precompute_ref_log_probs: bool = False,
    bf16: bool | None = None,
    dtype: str = "float32",
    save_dtype: str = "auto",
    gradient_checkpointing: bool | None = None,
    checkpoint_dir: str | Path | None = None,
    save_steps: int = 500,
    save_total_limit: int = 1,
    logging_steps: int = 1,
    logger: logging.Logger | None = None,
    progress: ProgressFn | None = None,
    deepspeed: str | Path | None = None,
    device: str | None = None,
    dataset_num_proc: int | None = None,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Direct preference optimisation of the causal LM in ``model_dir`` on conversational pairs.

    ``rows`` are dicts with ``prompt`` (messages ending with a user turn), ``chosen`` and
    ``rejected`` (messages, normally one assistant turn each), TRL's conversational preference
    format. Pairs whose chosen and rejected are identical carry no signal and are dropped.

    Reference model: the policy's initial weights, frozen.

    - full fine-tuning: TRL loads a second, frozen copy of ``model_dir`` (same dtype) as the
      reference (or, with ``precompute_ref_log_probs=True``, scores the data with it once
      before training and frees it);
    - LoRA: no second copy; TRL computes reference log-probs with the adapter *disabled*
      (``use_adapter(model, None)``), which is exactly the initial model because a new LoRA
      adapter starts at zero (B = 0).

    ``max_length`` truncates prompt+completion keeping the start (TRL 1.x has no
    ``max_prompt_length`` any more); ``max_prompt_length``, when set, first keeps the *last*
    ``max_prompt_length`` prompt tokens (TRL <= 0.x semantics: the assistant header and the end
    of the user turn survive, the start of a long prompt is cut). Pairs whose prompt still
    fills ``max_length`` are dropped. ``beta``/``loss_type`` are TRL's (``"sigmoid"`` = the DPO
    paper, LLaMA-Factory's default used by DynamicRAG). Other arguments as :func:`sft_train`.

    Returns the :func:`sft_train` stats plus ``reference`` (how the reference is computed),
    ``first_reward_margin``, ``last_reward_margin``, ``last_reward_accuracy`` and
    ``reward_margins`` (``[step, margin]`` pairs).
    """
    logger = logger or log
    if not beta > 0:
        raise ConfigError(f"dpo: beta must be > 0, got {beta}")
    if loss_type not in DPO_LOSS_TYPES:
        raise ConfigError(f"dpo: unknown loss_type {loss_type!r}; expected one of "
                          f"{list(DPO_LOSS_TYPES)}")
    if max_prompt_length is not None and max_prompt_length < 1:
        raise ConfigError(f"dpo: max_prompt_length must be >= 1 or null, got {max_prompt_length}")
    _check_common(lr=lr, epochs=epochs, max_steps=max_steps, batch=per_device_batch_size,
                  grad_accum=grad_accum, warmup_ratio=warmup_ratio, max_length=max_length,
                  save_steps=save_steps, lora=lora, lora_r=lora_r, deepspeed=deepspeed,
                  kind="dpo")
    examples, identical = _dpo_examples(rows)
    params = dict(kind="dpo", beta=beta, loss_type=loss_type, lora=lora, lora_r=lora_r,
                  lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                  target_modules=target_modules, lr=lr, epochs=epochs, max_steps=max_steps,
                  per_device_batch_size=per_device_batch_size, grad_accum=grad_accum,
                  max_length=max_length, max_prompt_length=max_prompt_length,
                  warmup_ratio=warmup_ratio, lr_scheduler=lr_scheduler,
                  weight_decay=weight_decay, seed=seed,
                  precompute_ref_log_probs=precompute_ref_log_probs, dtype=dtype)
    if identical and dist_info()["rank"] == 0:
        logger.warning("dpo: dropped %d pair(s) whose chosen and rejected are identical", identical)
    stats = _run("dpo", model_dir, examples, out_dir, params, logger=logger, progress=progress,
                 bf16=bf16, save_dtype=save_dtype, gradient_checkpointing=gradient_checkpointing,
                 checkpoint_dir=checkpoint_dir, save_steps=save_steps,
                 save_total_limit=save_total_limit, logging_steps=logging_steps,
                 deepspeed=deepspeed, device=device, dataset_num_proc=dataset_num_proc,
                 callbacks=callbacks)
    stats["identical_pairs_dropped"] = identical
    return stats


def launch_command(
    num_gpus: int,
    script_args: Sequence[str],
    *,
    deepspeed_config: str | Path | None = None,
    main_process_port: int | None = None,
    module: bool = False,
    python: str | None = None,
) -> list[str]:
    """The argv that starts ``script_args`` once per GPU under ``accelerate launch``.

    ``script_args`` is ``[script.py, *args]``, or ``[package.module, *args]`` with
    ``module=True``. The launched processes get ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``; inside
    them :func:`sft_train`/:func:`dpo_train` train data-parallel (or with DeepSpeed when the
    same config path is also passed as their ``deepspeed=`` argument) and only rank 0 writes
    the output. The caller sets ``CUDA_VISIBLE_DEVICES`` to the GPUs it assigns. Mixed precision
    is left to the training arguments (``bf16``), so the launcher passes ``--mixed_precision no``.

    >>> launch_command(1, ["train_step.py", "--x", "1"], python="python")
    ['python', 'train_step.py', '--x', '1']
    >>> launch_command(2, ["-c", "pass"], python="python")[:8]
    ['python', '-m', 'accelerate.commands.launch', '--num_processes', '2', '--num_machines', '1', '--mixed_precision']
    """
    if num_gpus < 1:
        raise ConfigError(f"launch_command: num_gpus must be >= 1, got {num_gpus}")
    if not script_args:
        raise ConfigError("launch_command: script_args is empty")
    python = python or sys.executable
    if num_gpus == 1 and deepspeed_config is None:
        # one process needs no launcher: plain python keeps tracebacks and signals simple
        return [python, "-m", *script_args] if module else [python, *script_args]
    argv = [python, "-m", "accelerate.commands.launch", "--num_processes", str(num_gpus),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if deepspeed_config is not None:
        argv += ["--use_deepspeed", "--deepspeed_config_file", str(deepspeed_config)]
    else:
        argv += ["--multi_gpu"]
    if main_process_port is not None:
        argv += ["--main_process_port", str(main_process_port)]
    if module:
        argv += ["--module"]
    return argv + [str(a) for a in script_args]


def progress_callback(wrap: Callable, desc: str) -> ProgressFn:
    """Adapt an iterable wrapper such as ``ctx.progress(iterable, total=, desc=)`` to the
    ``progress(step, total)`` callable of :func:`sft_train`/:func:`dpo_train`."""
    state: dict[str, Any] = {"it": None, "done": 0}

    def progress(step: int, total: int) -> None:
        if state["it"] is None:
            state["it"] = iter(wrap(range(total), total=total, desc=desc))
        while state["done"] < min(step, total):
            next(state["it"], None)
            state["done"] += 1
        if step >= total:
            for _ in state["it"]:  # finish the bar (its last log line)
                pass

    return progress


def free_port() -> int:
    """A TCP port free right now on this host, for ``launch_command(main_process_port=...)``:
    two multi-GPU steps launched at once would otherwise both use accelerate's default 29500."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dist_info() -> dict[str, int]:
    """``{"rank", "local_rank", "world_size"}`` of this process from the launcher's env vars."""
    return {"rank": int(os.environ.get("RANK", "0")),
            "local_rank": int(os.environ.get("LOCAL_RANK", "-1")),
            "world_size": int(os.environ.get("WORLD_SIZE", "1"))}


def last_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest complete ``checkpoint-<step>`` directory (with ``trainer_state.json``), or None."""
    done = [(step, path) for step, path in _checkpoints(checkpoint_dir)
            if (path / "trainer_state.json").is_file()]
    return max(done)[1] if done else None


# ---------------------------------------------------------------------------------------------
# validation and row conversion


def _check_common(*, lr, epochs, max_steps, batch, grad_accum, warmup_ratio, max_length,
                  save_steps, lora, lora_r, deepspeed, kind):
    if not lr > 0:
        raise ConfigError(f"{kind}: lr must be > 0, got {lr}")
    if max_steps == 0 or max_steps < -1:
        raise ConfigError(f"{kind}: max_steps must be -1 (train by epochs) or > 0, got {max_steps}")
    if max_steps == -1 and not epochs > 0:
        raise ConfigError(f"{kind}: epochs must be > 0 when max_steps is -1, got {epochs}")
    if batch < 1 or grad_accum < 1:
        raise ConfigError(f"{kind}: per_device_batch_size and grad_accum must be >= 1, "
                          f"got {batch} and {grad_accum}")
    if not 0 <= warmup_ratio < 1:
        raise ConfigError(f"{kind}: warmup_ratio must be in [0, 1), got {warmup_ratio}")
    if max_length is not None and max_length < 2:
        raise ConfigError(f"{kind}: max_length must be >= 2 or null, got {max_length}")
    if save_steps < 1:
        raise ConfigError(f"{kind}: save_steps must be >= 1, got {save_steps}")
    if lora and lora_r < 1:
        raise ConfigError(f"{kind}: lora_r must be >= 1, got {lora_r}")
    if deepspeed is not None:
        if not Path(deepspeed).is_file():
            raise ConfigError(f"{kind}: deepspeed config {deepspeed} does not exist")
        try:
            ds = json.loads(Path(deepspeed).read_text())
        except ValueError as err:
            raise ConfigError(f"{kind}: deepspeed config {deepspeed} is not JSON: {err}") from err
        zero = ds.get("zero_optimization") or {}
        if zero.get("stage") == 3 and not zero.get("stage3_gather_16bit_weights_on_model_save"):
            # without it Trainer.save_model writes only ZeRO shards and out_dir cannot be built
            raise ConfigError(f"{kind}: ZeRO-3 config {deepspeed} must set "
                              "zero_optimization.stage3_gather_16bit_weights_on_model_save: true",
                              hint="the final checkpoint is gathered on rank 0 to write out_dir")
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError(f"{kind}: deepspeed={deepspeed} but deepspeed is not installed",
                              hint="pip install 'ragline[gpu]'")


def _row_name(row: dict, index: int) -> str:
    rid = row.get("id") if isinstance(row, dict) else None
    return f"row {index}" + (f" (id {rid!r})" if rid is not None else "")


def _messages(value: Any, where: str, field: str) -> list[dict[str, str]]:
    """Validate a message list and normalise each message to exactly ``{"role", "content"}``."""
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(f"{where}: '{field}' must be a non-empty list of "
                        f"{{role, content}} messages, got {type(value).__name__}")
    out = []
    for j, msg in enumerate(value):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise DataError(f"{where}: {field}[{j}] must be a dict with 'role' and 'content'")
        role, content = msg["role"], msg["content"]
        if role not in ROLES:
            raise DataError(f"{where}: {field}[{j}] has role {role!r} (expected one of {list(ROLES)})")
        if not isinstance(content, str):
            raise DataError(f"{where}: {field}[{j}] ({role}) content must be a string, "
                            f"got {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


def _sft_examples(rows: Sequence[dict], loss_on: str) -> list[dict]:
    """Chat rows -> TRL examples: prompt-completion for ``loss_on="completion"``, else messages."""
    if rows is None or len(rows) == 0:
        raise DataError("sft: the training set is empty (0 chat rows)",
                        hint="check the step that produces the Chat table")
    examples = []
    for i, row in enumerate(rows):
        where = f"sft {_row_name(row, i)}"
        if not isinstance(row, dict) or "messages" not in row:
            raise DataError(f"{where}: missing field 'messages' (expected id, task, messages)")
        msgs = _messages(row["messages"], where, "messages")
        last = max((j for j, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None:
            raise DataError(f"{where}: no assistant turn to train on "
                            f"(roles: {[m['role'] for m in msgs]})")
        if loss_on == "completion":
            if last != len(msgs) - 1:
                raise DataError(f"{where}: the last message must be the assistant answer, got "
                                f"{msgs[-1]['role']!r} after it")
            if last == 0:
                raise DataError(f"{where}: the assistant answer has no prompt before it")
            examples.append({"prompt": msgs[:last], "completion": msgs[last:]})
        else:
            examples.append({"messages": msgs})
    return examples


def _dpo_examples(rows: Sequence[dict]) -> tuple[list[dict], int]:
    if rows is None or len(rows) == 0:
        raise DataError("dpo: the training set is empty (0 preference pairs)",
                        hint="check the step that produces the Preferences table (and its task filter)")
    examples, identical = [], 0
    for i, row in enumerate(rows):
        where = f"dpo {_row_name(row, i)}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a dict with prompt, chosen, rejected")
        for field in ("prompt", "chosen", "rejected"):
            if field not in row:
                raise DataError(f"{where}: missing field '{field}' (expected id, task, prompt, "
                                "chosen, rejected)")
        prompt = _messages(row["prompt"], where, "prompt")
        chosen = _messages(row["chosen"], where, "chosen")
        rejected = _messages(row["rejected"], where, "rejected")
        if prompt[-1]["role"] == "assistant":
            raise DataError(f"{where}: the prompt must end with a user turn, not an assistant turn")
        for field, msgs in (("chosen", chosen), ("rejected", rejected)):
            if msgs[-1]["role"] != "assistant":
                raise DataError(f"{where}: '{field}' must end with an assistant turn, got "
                                f"{msgs[-1]['role']!r}")
        if chosen == rejected:
            identical += 1
            continue
        examples.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    if not examples:
        raise DataError(f"dpo: all {len(rows)} pairs have identical chosen and rejected answers")
    return examples, identical


# ---------------------------------------------------------------------------------------------
# the shared training driver


def _fingerprint(kind: str, model_dir: Path, examples: list[dict], params: dict) -> str:
    """Hash of the inputs and semantic hyper-parameters: a checkpoint is resumed only if equal."""
    try:
        import xxhash
        h = xxhash.xxh3_128()
    except ImportError:  # pragma: no cover - xxhash is a declared dependency
        import hashlib
        h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(str(model_dir.resolve()).encode())
    config = model_dir / "config.json"
    if config.is_file():
        h.update(config.read_bytes())
    for ex in examples:
        for field in ("prompt", "completion", "messages", "chosen", "rejected"):
            for m in ex.get(field, ()):
                h.update(m["role"].encode())
                h.update(b"\x00")
                h.update(m["content"].encode())
                h.update(b"\x01")
            h.update(b"\x02")
        h.update(b"\x03")
    return h.hexdigest()


def _checkpoints(checkpoint_dir: str | Path) -> list[tuple[int, Path]]:
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    out = []
    for path in root.iterdir():
        name = path.name
        if path.is_dir() and name.startswith("checkpoint-") and name[11:].isdigit():
            out.append((int(name[11:]), path))
    return sorted(out)


def _prepare_checkpoint_dir(ckpt: Path, fingerprint: str, params: dict,
                            logger: logging.Logger) -> None:
    """Rank 0: drop checkpoints of another configuration and half-written ones; record ours."""
    ckpt.mkdir(parents=True, exist_ok=True)
    fp_file = ckpt / FINGERPRINT_FILE
    old = None
    if fp_file.is_file():
        try:
            old = json.loads(fp_file.read_text()).get("fingerprint")
        except (OSError, ValueError):
            old = None
    existing = _checkpoints(ckpt)
    if existing and old != fingerprint:
        logger.warning("%s: %d checkpoint(s) in %s come from different data or settings; "
                       "deleting them and starting from step 0", params["kind"], len(existing), ckpt)
        for _, path in existing:
            shutil.rmtree(path, ignore_errors=True)
    else:
        newest = last_checkpoint(ckpt)
        newest_step = int(newest.name[11:]) if newest else -1
        for step, path in existing:
            if step > newest_step:
                logger.warning("%s: deleting incomplete checkpoint %s (no trainer_state.json)",
                               params["kind"], path.name)
                shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(ckpt / STAGING_DIR, ignore_errors=True)
    fp_file.write_text(json.dumps({"fingerprint": fingerprint, "params": params}, indent=1,
                                  default=str))


@contextlib.contextmanager
def _quiet_progress_bars():
    """Silence datasets/transformers tqdm bars (they go to the terminal, not the step log)."""
    import datasets
    import transformers
    ds_on = datasets.utils.logging.is_progress_bar_enabled()
    tf_on = transformers.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if ds_on:
            datasets.utils.logging.enable_progress_bar()
        if tf_on:
            transformers.utils.logging.enable_progress_bar()


def _source_dtype(model_dir: Path) -> str:
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return "float32"
    value = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    return value if value in ("float32", "bfloat16", "float16") else "float32"


def _make_log_callback(kind: str, logger: logging.Logger, progress: ProgressFn | None,
                       record: dict):
    from transformers import TrainerCallback

    class LogCallback(TrainerCallback):
        """Sends loss/lr (and DPO reward figures) to the step's logger; feeds ``progress``."""

        def on_train_begin(self, args, state, control, **kwargs):
            record["start_step"] = state.global_step
            record["max_steps"] = state.max_steps
            if state.is_world_process_zero:
                world = max(args.world_size, 1)
                logger.info("%s: %d optimizer steps (%s), batch %d x accum %d x %d process(es), "
                            "lr %.3g %s, warmup %s", kind, state.max_steps,
                            f"resuming at step {state.global_step}" if state.global_step
                            else "from step 0", args.per_device_train_batch_size,
                            args.gradient_accumulation_steps, world, args.learning_rate,
                            args.lr_scheduler_type.value if hasattr(args.lr_scheduler_type, "value")
                            else args.lr_scheduler_type, args.warmup_steps)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs or not state.is_world_process_zero:
                return
            parts = [f"{kind} step {state.global_step}/{state.max_steps}",
                     f"epoch {logs.get('epoch', state.epoch or 0):.2f}",
                     f"loss {float(logs['loss']):.4f}"]
            if "learning_rate" in logs:
                parts.append(f"lr {float(logs['learning_rate']):.3e}")
            if "grad_norm" in logs and logs["grad_norm"] is not None:
                parts.append(f"grad_norm {float(logs['grad_norm']):.3f}")
            for key, label in (("mean_token_accuracy", "tok_acc"),
                               ("rewards/margins", "margin"), ("rewards/accuracies", "reward_acc"),
                               ("rewards/chosen", "r_chosen"), ("rewards/rejected", "r_rejected")):
                if key in logs:
                    parts.append(f"{label} {float(logs[key]):.4f}")
            logger.info(" ".join(parts))

        def on_step_end(self, args, state, control, **kwargs):
            if progress is not None and state.is_world_process_zero:
                progress(state.global_step, state.max_steps)

    return LogCallback()


def _peft_config(params: dict):
    from peft import LoraConfig
    return LoraConfig(r=params["lora_r"], lora_alpha=params["lora_alpha"],
                      lora_dropout=params["lora_dropout"], target_modules=params["target_modules"],
                      bias="none", task_type="CAUSAL_LM")


def _run(kind: str, model_dir, examples: list[dict], out_dir, params: dict, *,
         logger: logging.Logger, progress, bf16, save_dtype, gradient_checkpointing,
         checkpoint_dir, save_steps, save_total_limit, logging_steps, deepspeed, device,
         dataset_num_proc, callbacks) -> dict[str, Any]:
    started = time.perf_counter()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").is_file():
        raise ConfigError(f"{kind}: {model_dir} is not a Hugging Face checkpoint (no config.json)")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # TRL pings the Hub on trainer init

    import torch
    from transformers import AutoTokenizer, PrinterCallback, ProgressCallback

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cuda", "cpu"):
        raise ConfigError(f"{kind}: device must be 'cuda' or 'cpu', got {device!r}")
    on_gpu = device == "cuda"
    if on_gpu and not torch.cuda.is_available():
        raise ConfigError(f"{kind}: device='cuda' but no CUDA device is visible")
    if bf16 is None:
        bf16 = on_gpu and torch.cuda.is_bf16_supported()
    if gradient_checkpointing is None:
        gradient_checkpointing = on_gpu
    from transformers.trainer_utils import SchedulerType

    schedulers = [t.value for t in SchedulerType]
    if params["lr_scheduler"] not in schedulers:
        raise ConfigError(f"{kind}: unknown lr_scheduler {params['lr_scheduler']!r}; expected "
                          f"one of {schedulers}")
    if params["dtype"] not in ("float32", "bfloat16", "float16", "auto"):
        raise ConfigError(f"{kind}: dtype must be float32, bfloat16, float16 or auto, "
                          f"got {params['dtype']!r}")

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"{kind}: the tokenizer in {model_dir} has no chat template; the "
                          "conversational rows cannot be rendered",
                          hint="use an instruct/chat checkpoint or add tokenizer.chat_template")
    if kind == "sft" and params["loss_on"] == "assistant":
        _check_assistant_masks(tokenizer, model_dir)

    fingerprint = _fingerprint(kind, model_dir, examples, params)
    tmp_ckpt = None
    if checkpoint_dir is None:
        tmp_ckpt = tempfile.mkdtemp(prefix=f"ragline-{kind}-")
        ckpt, resumable = Path(tmp_ckpt), False
    else:
        ckpt, resumable = Path(checkpoint_dir), True

    common = dict(
        output_dir=str(ckpt),
        learning_rate=params["lr"],
        num_train_epochs=float(params["epochs"]),
        max_steps=params["max_steps"],
        per_device_train_batch_size=params["per_device_batch_size"],
        gradient_accumulation_steps=params["grad_accum"],
        warmup_steps=float(params["warmup_ratio"]),  # a float in [0, 1) is a ratio of total steps
        lr_scheduler_type=params["lr_scheduler"],
        weight_decay=params["weight_decay"],
        seed=params["seed"],
        bf16=bool(bf16),
        fp16=False,
        use_cpu=not on_gpu,
        activation_checkpointing=bool(gradient_checkpointing),
        max_length=params["max_length"],
        logging_strategy="steps",
        logging_steps=logging_steps,
        save_strategy="steps" if resumable else "no",
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        deepspeed=str(deepspeed) if deepspeed else None,
        model_init_kwargs={"dtype": params["dtype"], "device_map": None},
        dataset_num_proc=dataset_num_proc,
        dataloader_num_workers=0,
    )
    try:
        with _quiet_progress_bars():
            if kind == "sft":
                trainer, reference = _sft_trainer(model_dir, examples, tokenizer, common, params)
            else:
                trainer, reference = _dpo_trainer(model_dir, examples, tokenizer, common, params)
            state = trainer.args.distributed_state
            is_main = trainer.is_world_process_zero()
            if trainer.args.world_size > 1:
                # every rank must save into and resume from rank 0's directory (a launcher's
                # ranks may each have been handed their own scratch directory)
                from accelerate.utils import broadcast_object_list

                shared = [str(ckpt)]
                broadcast_object_list(shared, from_process=0)
                ckpt = Path(shared[0])
                trainer.args.output_dir = str(ckpt)
            trainer.remove_callback(PrinterCallback)
            trainer.remove_callback(ProgressCallback)
            record: dict[str, Any] = {}
            trainer.add_callback(_make_log_callback(kind, logger, progress, record))
            for cb in callbacks or ():
                trainer.add_callback(cb)

            num_examples = len(examples)
            kept = len(trainer.train_dataset)
            if kept == 0:
                raise DataError(f"{kind}: every one of the {num_examples} examples was dropped "
                                f"because its prompt alone fills max_length={params['max_length']}",
                                hint="raise max_length (or set max_prompt_length for dpo)")
            if is_main:
                if kept < num_examples:
                    logger.warning("%s: dropped %d of %d examples whose prompt fills "
                                   "max_length=%s", kind, num_examples - kept, num_examples,
                                   params["max_length"])
                if resumable:
                    _prepare_checkpoint_dir(ckpt, fingerprint, params, logger)
            state.wait_for_everyone()
            resume = last_checkpoint(ckpt) if resumable else None
            trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
            total = sum(p.numel() for p in trainer.model.parameters())
            if is_main:
                logger.info("%s: %s on %s (%s), %d examples, %s parameters trainable of %s; "
                            "precision %s, weights %s; reference: %s; %s", kind,
                            "LoRA r=%d" % params["lora_r"] if params["lora"] else "full fine-tuning",
                            device, model_dir, kept, f"{trainable:,}", f"{total:,}",
                            "bf16 autocast" if bf16 else "fp32", params["dtype"], reference or "-",
                            f"resuming from {resume.name}" if resume else "no checkpoint to resume")

            finished = _finished_state(resume)
            if finished is not None:
                # transformers resumed at the last step still runs one more step; a finished run
                # (crash while writing out_dir) only needs its last checkpoint's weights.
                if is_main:
                    logger.info("%s: %s already holds the finished run (step %d); only writing "
                                "%s", kind, resume.name, finished["global_step"], out_dir)
                record["start_step"] = finished["global_step"]
                history = finished["log_history"]
                global_step, total_steps, train_runtime = (finished["global_step"],
                                                           finished["max_steps"], 0.0)
                weights = resume
            else:
                result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
                history = trainer.state.log_history
                global_step, total_steps = trainer.state.global_step, trainer.state.max_steps
                train_runtime = float(result.metrics.get("train_runtime", float("nan")))
                # Trainer.save_model handles DDP/DeepSpeed gathering and writes on rank 0 (the
                # adapter only, with LoRA); rank 0 then writes the plain checkpoint to out_dir.
                weights = ckpt / STAGING_DIR
                trainer.save_model(str(weights))
            state.wait_for_everyone()
            if is_main:
                _finalize(weights, model_dir, out_dir, lora=params["lora"],
                          save_dtype=save_dtype, logger=logger, kind=kind)
                shutil.rmtree(ckpt / STAGING_DIR, ignore_errors=True)
            state.wait_for_everyone()
    finally:
        if tmp_ckpt is not None:
            shutil.rmtree(tmp_ckpt, ignore_errors=True)

    losses = [[h["step"], float(h["loss"])] for h in history if "loss" in h]
    stats: dict[str, Any] = {
        "train_loss": (sum(v for _, v in losses) / len(losses)) if losses else float("nan"),
        "first_loss": losses[0][1] if losses else float("nan"),
        "last_loss": losses[-1][1] if losses else float("nan"),
        "losses": losses,
        "steps": int(global_step),
        "max_steps": int(total_steps),
        "resumed_from_step": int(record.get("start_step", 0)),
        "runtime_s": round(time.perf_counter() - started, 3),
        "train_runtime_s": train_runtime,
        "num_examples": kept,
        "dropped_examples": num_examples - kept,
        "trainable_params": int(trainable),
        "total_params": int(total),
        "lora": bool(params["lora"]),
        "world_size": int(trainer.args.world_size),
        "device": device,
        "bf16": bool(bf16),
        "out_dir": str(out_dir),
    }
    if kind == "sft":
        stats["loss_on"] = params["loss_on"]
    else:
        margins = [[h["step"], float(h["rewards/margins"])] for h in history
                   if "rewards/margins" in h and "loss" in h]
        accs = [float(h["rewards/accuracies"]) for h in history
                if "rewards/accuracies" in h and "loss" in h]
        stats.update(reference=reference, reward_margins=margins,
                     first_reward_margin=margins[0][1] if margins else float("nan"),
                     last_reward_margin=margins[-1][1] if margins else float("nan"),
                     last_reward_accuracy=accs[-1] if accs else float("nan"))
    if trainer.is_world_process_zero():
        logger.info("%s: done, %d steps, loss %.4f -> %.4f (mean %.4f), %.1f s; wrote %s", kind,
                    stats["steps"], stats["first_loss"], stats["last_loss"], stats["train_loss"],
                    stats["runtime_s"], out_dir)
    if any(not math.isfinite(v) for _, v in losses):
        logger.warning("%s: non-finite loss values were logged", kind)
    _release(trainer)
    return stats


def _release(trainer) -> None:
    """Free the trainer's model and optimizer now (GPU memory for whatever runs next)."""
    import gc

    import torch

    trainer.accelerator.free_memory()
    trainer.model = trainer.model_wrapped = trainer.optimizer = trainer.lr_scheduler = None
    if getattr(trainer, "ref_model", None) is not None:
        trainer.ref_model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors",
                "pytorch_model.bin", "pytorch_model.bin.index.json")


def _finished_state(checkpoint: Path | None) -> dict | None:
    """The trainer state of ``checkpoint`` if it is the last step of its run and holds weights."""
    if checkpoint is None:
        return None
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return None
    if state.get("global_step", 0) < state.get("max_steps", 0) or state.get("max_steps", 0) <= 0:
        return None
    if not any((checkpoint / name).is_file() for name in WEIGHT_FILES):
        return None  # e.g. DeepSpeed shards only: let the trainer resume (one extra step)
    return state


def _check_assistant_masks(tokenizer, model_dir: Path) -> None:
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if has_generation_markers(tokenizer.chat_template):
        return
    try:
        get_training_chat_template(tokenizer)
    except ValueError as err:
        raise ConfigError(
            f"sft: loss_on='assistant' needs a chat template with {{% generation %}} markers; the "
            f"template of {model_dir} has none and TRL has no training variant for it",
            hint="use loss_on='completion' (loss on the final assistant turn) or add "
                 "{% generation %}...{% endgeneration %} around assistant content") from err


def _sft_trainer(model_dir: Path, examples, tokenizer, common: dict, params: dict):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    loss_on = params["loss_on"]
    args = SFTConfig(
        **common,
        completion_only_loss=(loss_on == "completion"),
        assistant_only_loss=(loss_on == "assistant"),
        packing=False,
    )
    trainer = SFTTrainer(
        model=str(model_dir),
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=_peft_config(params) if params["lora"] else None,
    )
    return trainer, None


def _dpo_trainer(model_dir: Path, examples, tokenizer, common: dict, params: dict):
    import copy

    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    max_prompt_length = params["max_prompt_length"]

    class _DPOTrainer(DPOTrainer):
        """DPOTrainer with ``max_prompt_length`` (keep the prompt's last tokens) restored."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if max_prompt_length is None:
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            unfiltered = copy.copy(args)
            unfiltered.max_length = None  # tokenize without TRL's drop, truncate, then drop
            dataset = super()._prepare_dataset(dataset, processing_class, unfiltered, dataset_name)
            dataset = dataset.map(lambda ex: {"prompt_ids": ex["prompt_ids"][-max_prompt_length:]})
            if args.max_length is not None:
                dataset = dataset.filter(lambda ex: len(ex["prompt_ids"]) < args.max_length)
            return dataset

    args = DPOConfig(
        **common,
        beta=params["beta"],
        loss_type=[params["loss_type"]],
        precompute_ref_log_probs=params["precompute_ref_log_probs"],
    )
    trainer = _DPOTrainer(
        model=str(model_dir),
        ref_model=None,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=_peft_config(params) if params["lora"] else None,
    )
    from accelerate.utils import is_peft_model as _is_peft

    if params["lora"]:
        # TRL keeps no second model: reference log-probs come from the same network with the
        # (zero-initialised) adapter disabled, i.e. the initial weights.
        assert trainer.ref_model is None and _is_peft(trainer.model)
        reference = "initial weights via the disabled LoRA adapter (no second copy)"
    elif params["precompute_ref_log_probs"]:
        reference = f"frozen copy of {model_dir}, log-probs precomputed before training"
    else:
        reference = f"frozen copy of {model_dir} (second model in memory)"
    return trainer, reference


def _finalize(staging: Path, model_dir: Path, out_dir: Path, *, lora: bool, save_dtype: str,
              logger: logging.Logger, kind: str) -> None:
    """Rank 0: write a plain full checkpoint (+ ``adapter/`` with LoRA) from the staging save."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    dtype_name = _source_dtype(model_dir) if save_dtype == "auto" else save_dtype
    if dtype_name not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"{kind}: save_dtype must be auto, float32, bfloat16 or float16, "
                          f"got {save_dtype!r}")
    dtype = getattr(torch, dtype_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    if lora:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, device_map=None)
        model = PeftModel.from_pretrained(base, str(staging)).merge_and_unload()
        adapter = out_dir / "adapter"
        adapter.mkdir(exist_ok=True)
        for name in os.listdir(staging):
            if name.startswith("adapter_"):
                shutil.copy2(staging / name, adapter / name)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(staging), dtype=dtype, device_map=None)
    model.save_pretrained(str(out_dir))
    tok_src = staging if (staging / "tokenizer_config.json").is_file() else model_dir
    AutoTokenizer.from_pretrained(str(tok_src)).save_pretrained(str(out_dir))
    logger.info("%s: saved %s checkpoint (%s) to %s in %.1f s", kind,
                "merged LoRA" if lora else "full", dtype_name, out_dir,
                time.perf_counter() - started)
