"""Our config -> TRL's: one function builds ``SFTConfig``/``DPOConfig``, two build the trainers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.api import ConfigError
from stages.lib.train.args import DpoConfig, SftConfig, TrainArgs


@dataclass
class RunSetup:
    """What :meth:`Finetune.prepare` decided: device, precision, where checkpoints go."""

    device: str
    bf16: bool
    gradient_checkpointing: bool
    checkpoint_dir: Path
    resumable: bool   # False: a temporary checkpoint_dir, no intermediate checkpoints
    deepspeed: str | None = None   # the DeepSpeed config used (none on a CPU)


def trl_args(cfg: TrainArgs, setup: RunSetup):
    """TRL's ``SFTConfig`` or ``DPOConfig`` (by the type of ``cfg``) for this run."""
    from trl import DPOConfig as TrlDpoConfig
    from trl import SFTConfig as TrlSftConfig

    common: dict[str, Any] = dict(
        output_dir=str(setup.checkpoint_dir), learning_rate=cfg.lr,
        num_train_epochs=float(cfg.epochs), max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        # a float in [0, 1) is a ratio of the total steps, an int a number of steps
        warmup_steps=cfg.warmup_steps if cfg.warmup_steps > 0 else float(cfg.warmup_ratio),
        adam_beta2=cfg.adam_beta2,
        lr_scheduler_type=cfg.lr_scheduler, weight_decay=cfg.weight_decay, seed=cfg.seed,
        bf16=setup.bf16, fp16=False, use_cpu=setup.device == "cpu",
        max_length=cfg.max_length,
        logging_strategy="steps", logging_steps=cfg.logging_steps,
        save_strategy="steps" if setup.resumable else "no", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, eval_strategy="no", report_to="none",
        disable_tqdm=True, deepspeed=setup.deepspeed,
        model_init_kwargs={"dtype": cfg.dtype, "device_map": None},
        dataset_num_proc=cfg.dataset_num_proc, dataloader_num_workers=0,
    )
    common[_checkpointing_name(TrlSftConfig)] = setup.gradient_checkpointing
    if isinstance(cfg, SftConfig):
        return TrlSftConfig(**common, completion_only_loss=cfg.loss_on == "completion",
                            assistant_only_loss=cfg.loss_on == "assistant", packing=False,
                            train_sampling_strategy="random" if cfg.shuffle else "sequential")
    if isinstance(cfg, DpoConfig):
        return TrlDpoConfig(**common, beta=cfg.beta, loss_type=[cfg.loss_type],
                            precompute_ref_log_probs=cfg.precompute_ref_log_probs)
    raise TypeError(f"no TRL trainer for {type(cfg).__name__}")


def _checkpointing_name(config_class) -> str:
    """The training argument that switches activation checkpointing in this transformers.

    transformers 5.23 renamed ``gradient_checkpointing`` to ``activation_checkpointing`` and
    warns on every use of the old name; older 5.x know only the old one. Setting the new name
    also sets the old one, which TRL reads.
    """
    fields = getattr(config_class, "__dataclass_fields__", {})
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def peft_config(cfg: TrainArgs):
    """The LoRA adapter to train, or None for full fine-tuning."""
    if not cfg.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, bias="none", task_type="CAUSAL_LM")


def sft_trainer(model_dir: Path, examples: list[dict], tokenizer, cfg: SftConfig,
                setup: RunSetup, added: dict[str, int] | None = None, log=None):
    """TRL ``SFTTrainer`` on the examples. The model is loaded from ``model_dir`` (by TRL, or
    here with its embeddings grown when ``added`` tokens are new); ``masked_spans`` are then
    applied to the tokenised examples (``log`` says how many were left without a target).
    ``cfg.loss_average: micro_batch`` makes each micro-batch's own token mean the unit the
    optimizer step averages (TRL's default averages the step's tokens)."""
    from datasets import Dataset
    from trl import SFTTrainer

    from stages.lib.train.vocab import masked_dataset, resized_model, span_ids

    if cfg.loss_on == "assistant":
        check_assistant_masks(tokenizer, model_dir)
    spans = span_ids(tokenizer, cfg.masked_spans)
    args = trl_args(cfg, setup)   # before loading a model (DeepSpeed ZeRO-3 init)
    model = (resized_model(model_dir, tokenizer, cfg.dtype, cfg.seed, added, cfg.new_token_init)
             if added else str(model_dir))
    if added:
        args.model_init_kwargs = None   # loaded here already (TRL would warn they are ignored)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples),
                         processing_class=tokenizer, peft_config=peft_config(cfg))
    if cfg.loss_average == "micro_batch":
        # Without loss kwargs the Trainer counts no tokens over the step: TRL's SFT loss is
        # then each micro-batch's own token mean, which the Trainer divides by the
        # accumulation steps (and DDP/DeepSpeed average over ranks)
        trainer.model_accepts_loss_kwargs = False
    if spans:
        trainer.train_dataset, removed = masked_dataset(trainer.train_dataset, spans)
        if removed and log is not None:
            log.warning("sft: %d example(s) have no supervised token outside masked_spans; "
                        "removed", removed)
    return trainer, None


def dpo_trainer(model_dir: Path, examples: list[dict], tokenizer, cfg: DpoConfig,
                setup: RunSetup):
    """TRL ``DPOTrainer``; returns it and a sentence saying how the reference is computed."""
    from datasets import Dataset
    from trl import DPOTrainer

    trainer = DPOTrainer(model=str(model_dir), ref_model=None, args=trl_args(cfg, setup),
                         train_dataset=Dataset.from_list(examples), processing_class=tokenizer,
                         peft_config=peft_config(cfg))
    if cfg.lora:
        # TRL keeps no second model: reference log-probs come from the same network with the
        # (zero-initialised) adapter disabled, i.e. the initial weights.
        reference = "initial weights via the disabled LoRA adapter (no second copy)"
    # no path: it is written into the model's training_stats.json, whose bytes its content hash
    # covers (the same weights from a model at another path would get another hash)
    elif cfg.precompute_ref_log_probs:
        reference = "frozen copy of the input model, log-probs precomputed before training"
    else:
        reference = "frozen copy of the input model (second model in memory)"
    return trainer, reference


def check_assistant_masks(tokenizer, model_dir: Path) -> None:
    """``loss_on="assistant"`` needs ``{% generation %}`` markers or a TRL training template."""
    from trl.chat_template_utils import (
        get_training_chat_template,
        has_generation_markers,
    )

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
