"""Trainer configuration: the hyper-parameters every trainer shares, written once.

``TrainArgs`` holds the shared fields; each trainer's config extends it with only its own fields
(data inheritance: no behaviour is inherited). A recipe sets them as flat keys under the step::

    steps:
      dpo: {stage: dpo, lr: 5.0e-6, beta: 0.1, loss_type: sigmoid, lora: true}

Choices are ``Literal`` and ranges ``Annotated[..., annotated_types.Ge(..)]``: the orchestrator's
pydantic validator enforces both at plan time (``steps.dpo.loss_type=sigmodi`` is refused by
``rag plan``), and :func:`validated` enforces them again when a config is built in Python.
``annotated_types`` is what ``pydantic.Field(ge=...)`` expands to; it is used here because it
imports in milliseconds (``pydantic.Field`` costs about 0.15 s at every stage import). Rules
between fields live in ``__post_init__``, which the validator also runs at plan time.

The defaults are the DynamicRAG paper's (SEEDS 1.3 steps 8 and 12): SFT lr 1e-5, 3 epochs,
batch 2 x accumulation 2; DPO lr 5e-6, 1 epoch, batch 1 x accumulation 4, beta 0.1, sigmoid.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Interval
from pydantic import BeforeValidator

from orchestrator.api import ConfigError, added, nonsemantic, recipe_path

PositiveInt = Annotated[int, Ge(1)]
PositiveFloat = Annotated[float, Gt(0)]
Fraction = Annotated[float, Interval(ge=0, lt=1)]
# transformers.trainer_utils.SchedulerType values (transformers 5.x) but those that cannot run
# here; a test compares the two with the installed transformers
Scheduler = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                    "constant_with_warmup", "inverse_sqrt"]
# left out, each with why: the trainer would fail at its first step, after every upstream step
# (no recipe needs them; a field for their arguments can bring one back when one does)
SCHEDULERS_LEFT_OUT = {
    "reduce_lr_on_plateau": "steps on an evaluation metric: ragline trains without an eval set "
                            "(eval_strategy 'no')",
    "greedy": "steps on an evaluation metric: ragline trains without an eval set "
              "(eval_strategy 'no')",
    "cosine_with_min_lr": "needs min_lr or min_lr_rate in lr_scheduler_kwargs, which ragline "
                          "does not set",
    "cosine_warmup_with_min_lr": "needs min_lr or min_lr_rate in lr_scheduler_kwargs, which "
                                 "ragline does not set",
    "warmup_stable_decay": "needs num_decay_steps in lr_scheduler_kwargs, which ragline does "
                           "not set",
}
# TRL 1.16 DPOConfig.loss_type values (TRL rejects others only at the first step) but those
# that need label smoothing, which ragline leaves at TRL's 0; a test compares the two, so a TRL
# upgrade that changes the list fails in the tests, not in a run
DpoLoss = Literal["sigmoid", "hinge", "ipo", "nca_pair", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"]
DPO_LOSSES_LEFT_OUT = {
    "exo_pair": "needs label_smoothing > 0 (TRL refuses 0), which ragline does not set",
    "robust": "is the sigmoid loss when label_smoothing is 0, the value ragline leaves it at",
}


def left_out(reasons: dict[str, str], choices: tuple):
    """A validator that refuses a choice ragline leaves out with why, before the Literal's
    check (whose "expected one of" said nothing of why a valid transformers/TRL name is refused).

    >>> check = left_out(DPO_LOSSES_LEFT_OUT, ("sigmoid", "ipo"))
    >>> check("sigmoid")
    'sigmoid'
    >>> check("robust")
    Traceback (most recent call last):
    ...
    ValueError: 'robust' is not offered here: it is the sigmoid loss when label_smoothing is 0, the value ragline leaves it at; choose one of ['sigmoid', 'ipo']
    """
    def check(value):
        if isinstance(value, str) and value in reasons:
            raise ValueError(f"{value!r} is not offered here: it {reasons[value]}; choose one of "
                             f"{list(choices)}")
        return value
    return check


@dataclass
class TrainArgs:
    """Hyper-parameters shared by every trainer (SFT, DPO and future critic/retriever ones)."""

    lr: PositiveFloat = 1e-5                 # paper (SFT)
    epochs: Annotated[float, Ge(0)] = 3.0    # paper (SFT); used when max_steps is -1
    max_steps: Annotated[int, Ge(-1)] = -1   # > 0 overrides epochs (smoke runs); 0 is refused
    per_device_batch_size: PositiveInt = 2   # paper (SFT); effective batch x grad_accum x GPUs
    grad_accum: PositiveInt = 2              # paper (SFT)
    max_length: Annotated[int, Ge(2)] | None = 8192   # paper's cutoff_len; longer rows keep their start
    warmup_ratio: Fraction = 0.1             # paper: a fraction of the total optimizer steps
    lr_scheduler: Annotated[Scheduler, BeforeValidator(
        left_out(SCHEDULERS_LEFT_OUT, typing.get_args(Scheduler)))] = "cosine"   # paper
    weight_decay: Annotated[float, Ge(0)] = 0.0
    # > 0: this many warmup steps instead of warmup_ratio (DPA-RAG's LLaMA-Factory run: 20)
    warmup_steps: Annotated[int, Ge(0)] = added(0)
    adam_beta2: Annotated[float, Interval(gt=0.0, lt=1.0)] = added(0.999)  # DPA-RAG: 0.95
    seed: Annotated[int, Ge(0)] = 42
    lora: bool = False                       # paper: full fine-tuning
    lora_r: PositiveInt = 16
    lora_alpha: PositiveInt = 32
    lora_dropout: Fraction = 0.05
    target_modules: str | list[str] = "all-linear"   # every linear layer except the LM head
    bf16: bool | None = None                 # None: on when a bf16-capable GPU is used
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"   # weights while training
    gradient_checkpointing: bool | None = nonsemantic(None)   # None: on GPU, off on CPU
    deepspeed: str | None = recipe_path(None)     # DeepSpeed JSON config (ZeRO-3 in the paper)
    save_steps: PositiveInt = nonsemantic(500)    # checkpoint interval in optimizer steps (resume)
    save_total_limit: PositiveInt = nonsemantic(1)
    logging_steps: PositiveInt = nonsemantic(1)
    dataset_num_proc: PositiveInt | None = nonsemantic(None)
    # for the plan's GPU memory estimate only (plan_notes): a preset such as "llama3-8b", a
    # checkpoint directory or a config.json (None: no estimate), and the memory of one GPU
    memory_model: str | None = recipe_path(None)
    gpu_memory_gib: PositiveFloat = nonsemantic(80.0)

    def __post_init__(self) -> None:
        if self.max_steps == 0:
            raise ConfigError("max_steps must be -1 (train by epochs) or > 0, got 0")
        if self.max_steps == -1 and not self.epochs > 0:
            raise ConfigError(f"epochs must be > 0 when max_steps is -1, got {self.epochs}",
                              hint="set epochs, or max_steps to a number of optimizer steps")
        if self.deepspeed is not None:
            check_deepspeed_file(self.deepspeed)

    def plan_notes(self, resources: dict[str, Any]) -> list[str]:
        """Notes printed under the step by ``rag plan`` (``resources``: ``gpus``, ``shards``...).

        The GPU memory per device of one training step (:mod:`stages.lib.train.memory_check`:
        from ``memory_model``, ``gpu_memory_gib`` and the precision, LoRA, batch, length and
        DeepSpeed fields); a ``ConfigError`` refuses a plan that cannot fit, naming the setting
        that would make it fit.
        """
        from stages.lib.train.memory_check import memory_notes

        return memory_notes(self, resources, dpo=isinstance(self, DpoConfig))


@dataclass
class SftConfig(TrainArgs):
    """Supervised fine-tuning (TRL ``SFTTrainer``); the shared fields' defaults are the paper's."""

    loss_on: Literal["completion", "assistant", "all"] = "completion"   # see stages.lib.train
    # tokens added to the vocabulary before training (Self-RAG's reflection tokens); embeddings
    # grow and train with the rest (full fine-tuning); the output saves special_tokens.json
    special_tokens: list[str] = field(default_factory=list)
    # the new rows' start: "mean", drawn around the mean of all embeddings (transformers' resize
    # default since 4.46); "normal", N(0, initializer_range), what resizing did before (the
    # Self-RAG seed's pinned 4.36); or "pieces", the mean of the rows of the pieces the old
    # tokenizer splits the token into, so that [Retrieval] and [No Retrieval] differ from step 0
    # (a short budget cannot pull 15 near-equal rows apart: Adam moves each weight about lr a step)
    new_token_init: Literal["mean", "normal", "pieces"] = "mean"
    # [open, close] token pairs: target tokens strictly between an open token and the next close
    # token get no loss, the two markers do (Self-RAG: ["<paragraph>", "</paragraph>"])
    masked_spans: list[tuple[str, str]] = field(default_factory=list)
    # how an optimizer step's loss averages its micro-batches: "tokens", every supervised token
    # of the step weighs the same (TRL's and transformers' default); "micro_batch", each
    # micro-batch's own token mean weighs the same, as a training loop that backpropagates
    # ``model(...).loss`` per micro-batch (RAG-Instruct's train_rag_sft.py, older transformers)
    loss_average: Literal["tokens", "micro_batch"] = added("tokens")
    # false: train on the rows in the order they come, epoch after epoch (a data step that
    # lays out its epochs itself, as rag_instruct.format's epochs; transformers' "sequential"
    # sampler); true: a fresh seeded shuffle each epoch
    shuffle: bool = added(True)

    def plan_notes(self, resources: dict[str, Any]) -> list[str]:
        """The memory estimate; and, with ``shuffle: false`` over several epochs, that every
        epoch repeats one order (a data step's epoch blocks want ``epochs: 1``)."""
        notes = TrainArgs.plan_notes(self, resources)
        if not self.shuffle and self.max_steps == -1 and self.epochs != 1:
            notes.append(f"shuffle: false with epochs: {self.epochs:g}: every epoch trains the "
                         "rows in the same order; for rows laid out one block per epoch "
                         "(rag_instruct.format epochs) set epochs: 1")
        return notes

    def __post_init__(self) -> None:
        TrainArgs.__post_init__(self)
        for open_token, close_token in self.masked_spans:
            if not open_token or open_token == close_token:
                raise ConfigError(f"masked_spans: [{open_token!r}, {close_token!r}] needs two "
                                  "different, non-empty tokens")
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ConfigError(f"special_tokens lists a token twice: {self.special_tokens}")
        if self.special_tokens and self.lora:
            # TRL's SFT reads the output layer's weight directly (its fused LM head), so a PEFT
            # wrapper training the new rows would be bypassed or break; Self-RAG trains fully
            raise ConfigError("special_tokens needs full fine-tuning (lora: false): the new "
                              "tokens' output rows cannot be trained through a LoRA adapter "
                              "with TRL's fused LM head",
                              hint="set lora: false, or add the tokens to the base model first")


@dataclass
class DpoConfig(TrainArgs):
    """Direct preference optimisation (TRL ``DPOTrainer``), paper settings (LLaMA-Factory's
    ``pref_beta``/``pref_loss`` defaults, which the seed did not override)."""

    lr: PositiveFloat = 5e-6                 # paper (DPO)
    epochs: Annotated[float, Ge(0)] = 1.0    # paper (DPO)
    per_device_batch_size: PositiveInt = 1   # paper (DPO)
    grad_accum: PositiveInt = 4              # paper (DPO)
    beta: PositiveFloat = 0.1                # paper
    loss_type: Annotated[DpoLoss, BeforeValidator(
        left_out(DPO_LOSSES_LEFT_OUT, typing.get_args(DpoLoss)))] = "sigmoid"   # paper
    tasks: list[str] = field(default_factory=lambda: ["generator", "reranker"])  # roles kept
    max_prompt_length: PositiveInt | None = None   # keep only the prompt's last N tokens
    precompute_ref_log_probs: bool = False   # score the data with the reference once, then free it

    def __post_init__(self) -> None:
        TrainArgs.__post_init__(self)
        if (self.max_prompt_length is not None and self.max_length is not None
                and self.max_prompt_length >= self.max_length):
            raise ConfigError(f"max_prompt_length ({self.max_prompt_length}) must be below "
                              f"max_length ({self.max_length}): the answer needs room",
                              hint="lower max_prompt_length or raise max_length")


def check_deepspeed_file(path: str) -> None:
    """The DeepSpeed config must exist, be JSON, and let ZeRO-3 gather the weights on save."""
    if not Path(path).is_file():
        raise ConfigError(f"deepspeed config {path} does not exist",
                          hint="a relative path is looked up in the current directory, then in "
                               "the recipe's project directory (the folder that holds conf/)")
    try:
        ds = json.loads(Path(path).read_text())
    except ValueError as err:
        raise ConfigError(f"deepspeed config {path} is not JSON: {err}") from err
    zero = ds.get("zero_optimization") or {}
    if zero.get("stage") == 3 and not zero.get("stage3_gather_16bit_weights_on_model_save"):
        # without it Trainer.save_model writes only ZeRO shards and out_dir cannot be built
        raise ConfigError(f"ZeRO-3 config {path} must set "
                          "zero_optimization.stage3_gather_16bit_weights_on_model_save: true",
                          hint="the final checkpoint is gathered on rank 0 to write out_dir")


def validated(cfg: TrainArgs) -> TrainArgs:
    """``cfg`` checked against its declared choices and ranges (a ``ConfigError`` naming the
    field otherwise): the same check the plan makes, for configs built in Python."""
    import pydantic

    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    try:
        return pydantic.TypeAdapter(type(cfg)).validate_python(values)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or type(cfg).__name__
        raise ConfigError(f"{type(cfg).__name__}.{where}: {first['msg']}, "
                          f"got {first.get('input')!r}") from None
