"""One fine-tuning run in the steps of a torchtune recipe: prepare, build, resume, train, export.

::

    with Finetune("dpo", model_dir, out_dir, cfg, hooks) as ft:
        tokenizer = ft.prepare()                            # device, precision, tokenizer
        ft.build_trainer(lambda setup: dpo_trainer(...), len(examples))   # TRL's trainer
        ft.train()                                          # from the resume point
        stats = ft.export()                                 # plain checkpoint in out_dir

Every rank of a multi-process launch runs the same steps on the same rows with the same
``checkpoint_dir``; only the main process (``hooks.is_main``) cleans checkpoints and writes
``out_dir``, the others wait at barriers and return the same stats.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.api import ConfigError, DataError
from stages.lib.models.checkpoint import check_generator
from stages.lib.train.args import TrainArgs
from stages.lib.train.checkpoints import (
    STAGING_DIR,
    drop_incomplete,
    drop_other_shape,
    finished_state,
    last_checkpoint,
)
from stages.lib.train.export import export_checkpoint
from stages.lib.train.hooks import TrainHooks, single_process_launch
from stages.lib.train.lm_head import labelled_positions_only
from stages.lib.train.log_callback import log_callback
from stages.lib.train.trainers import RunSetup


class Finetune:
    """The state of one run, built up step by step (each method is one phase)."""

    def __init__(self, kind: str, model_dir: str | Path, out_dir: str | Path, cfg: TrainArgs,
                 hooks: TrainHooks):
        self.kind, self.cfg, self.hooks, self.log = kind, cfg, hooks, hooks.log
        self.model_dir, self.out_dir = Path(model_dir), Path(out_dir)
        self.started = time.perf_counter()
        self.setup: RunSetup | None = None
        self.trainer: Any = None
        self.reference: str | None = None
        self.num_examples = self.kept = self.cut = self.trainable = self.total = 0
        self.weights: Path | None = None
        self.record: dict[str, Any] = {}
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> Finetune:
        return self

    def __exit__(self, *exc) -> None:
        self._exit.close()

    def prepare(self):
        """Device and precision, the checkpoint directory, and the model's tokenizer."""
        cfg, kind = self.cfg, self.kind
        check_generator(self.model_dir, needs=f"a causal language model to {kind}-train",
                        do=f"wire the generator checkpoint to the {kind} step's model input")
        if not (self.model_dir / "config.json").is_file():
            raise ConfigError(f"{kind}: {self.model_dir} is not a Hugging Face checkpoint "
                              "(no config.json)")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # TRL pings the Hub on init
        import torch
        from transformers import AutoTokenizer

        device = self.hooks.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device not in ("cuda", "cpu"):
            raise ConfigError(f"{kind}: device must be 'cuda' or 'cpu', got {device!r}")
        on_gpu = device == "cuda"
        if on_gpu and not torch.cuda.is_available():
            raise ConfigError(f"{kind}: device='cuda' but no CUDA device is visible")
        # DeepSpeed partitions GPU memory; a paper recipe tried on a CPU (gpus: 0) trains without
        # it rather than stopping here, after every step before it, for one more override
        deepspeed = cfg.deepspeed if on_gpu else None
        if cfg.deepspeed and not on_gpu:
            self.log.warning("%s: this step runs on the CPU: deepspeed=%s (a GPU setting) is not "
                             "used", kind, cfg.deepspeed)
        if deepspeed and importlib.util.find_spec("deepspeed") is None:
            raise ConfigError(f"{kind}: deepspeed={deepspeed} but deepspeed is not installed",
                              hint="pip install 'ragline[gpu]'")
        if deepspeed:   # gpus: 1 runs in-process: no launcher set the rank variables
            self._exit.enter_context(single_process_launch())
        ckpt = self.hooks.checkpoint_dir
        if ckpt is None:
            ckpt = Path(tempfile.mkdtemp(prefix=f"ragline-{kind}-"))
            self._exit.callback(shutil.rmtree, ckpt, ignore_errors=True)
        self.setup = RunSetup(
            device=device,
            bf16=cfg.bf16 if cfg.bf16 is not None else on_gpu and torch.cuda.is_bf16_supported(),
            gradient_checkpointing=on_gpu if cfg.gradient_checkpointing is None
            else cfg.gradient_checkpointing,
            checkpoint_dir=Path(ckpt), resumable=self.hooks.checkpoint_dir is not None,
            deepspeed=deepspeed)
        if not on_gpu:   # TRL's LM head would also project the prompt's unlabelled positions
            self._exit.enter_context(labelled_positions_only())
        tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(f"{kind}: the tokenizer in {self.model_dir} has no chat template; "
                              "the conversational rows cannot be rendered",
                              hint="use an instruct/chat checkpoint or add tokenizer.chat_template")
        return tokenizer

    def build_trainer(self, build: Callable[[RunSetup], tuple[Any, str | None]],
                      num_examples: int) -> None:
        """``build(setup) -> (trainer, reference)``; then our logging replaces TRL's bars."""
        from transformers import PrinterCallback, ProgressCallback

        self._exit.enter_context(quiet_progress_bars())
        self._exit.enter_context(warnings.catch_warnings())
        # PEFT and TRL read model.is_gradient_checkpointing, which transformers 5 deprecates:
        # once per step, and nothing a user of this stage can change
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                category=FutureWarning)
        self._exit.callback(self._release)
        self.trainer, self.reference = build(self.setup)
        self.trainer.remove_callback(PrinterCallback)
        self.trainer.remove_callback(ProgressCallback)
        self.trainer.add_callback(log_callback(self.kind, self.log, self.hooks.progress,
                                               self.record))
        for cb in self.hooks.callbacks:
            self.trainer.add_callback(cb)
        self.num_examples, self.kept = num_examples, len(self.trainer.train_dataset)
        self.trainable, self.total = param_counts(self.trainer.model.parameters())
        if self.kept == 0:
            raise DataError(f"{self.kind}: every one of the {num_examples} examples was dropped "
                            f"because its prompt alone fills max_length={self.cfg.max_length}",
                            hint="raise max_length (or set max_prompt_length for dpo)")
        if self.hooks.is_main and self.kept < num_examples:
            self.log.warning("%s: dropped %d of %d examples whose prompt fills max_length=%s",
                             self.kind, num_examples - self.kept, num_examples,
                             self.cfg.max_length)
        self.cut = answers_cut(self.trainer.train_dataset, self.cfg.max_length)
        if self.hooks.is_main and self.cut:
            self.log.warning("%s: %d of %d examples are longer than max_length=%s and are "
                             "trained with the end of their answer cut off (no end-of-turn "
                             "token): raise max_length, or shorten their prompts",
                             self.kind, self.cut, self.kept, self.cfg.max_length)

    def resume_point(self) -> Path | None:
        """The newest complete checkpoint of this run (after the main process dropped
        half-written ones), or None to start at step 0."""
        if not self.setup.resumable:
            return None
        if self.hooks.is_main:
            drop_incomplete(self.setup.checkpoint_dir, self.log, self.kind)
            shape = {"processes": int(self.trainer.args.world_size),
                     "per_device_batch_size": self.cfg.per_device_batch_size,
                     "grad_accum": self.cfg.grad_accum, "deepspeed": self.setup.deepspeed}
            drop_other_shape(self.setup.checkpoint_dir, shape, self.log, self.kind)
        self.trainer.args.distributed_state.wait_for_everyone()
        return last_checkpoint(self.setup.checkpoint_dir)

    def train(self) -> None:
        """Train from the resume point and stage the final weights for :meth:`export`; a run
        that had finished (it died while exporting) only re-exports its last checkpoint."""
        resume = self.resume_point()
        self._log_start(resume)
        finished = finished_state(resume)
        if finished is not None:
            # transformers resumed at the last step still runs one more step
            if self.hooks.is_main:
                self.log.info("%s: %s already holds the finished run (step %d); only writing %s",
                              self.kind, resume.name, finished["global_step"], self.out_dir)
            self.record.update(start_step=finished["global_step"],
                               history=finished["log_history"], steps=finished["global_step"],
                               max_steps=finished["max_steps"], train_runtime=0.0)
            self.weights = resume
            return
        result = self.trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        state = self.trainer.state
        self.record.update(history=state.log_history, steps=state.global_step,
                           max_steps=state.max_steps,
                           train_runtime=float(result.metrics.get("train_runtime", math.nan)))
        # save_model gathers DDP/DeepSpeed weights and writes on the main process (the adapter
        # only, with LoRA); export then turns it into the plain checkpoint
        self.weights = self.setup.checkpoint_dir / STAGING_DIR
        self.trainer.save_model(str(self.weights))

    def export(self) -> dict[str, Any]:
        """Main process: write ``out_dir`` (merged with LoRA); every process: the stats."""
        barrier = self.trainer.args.distributed_state.wait_for_everyone
        barrier()
        if self.hooks.is_main:
            export_checkpoint(self.weights, self.model_dir, self.out_dir, lora=self.cfg.lora,
                              log=self.log, kind=self.kind,
                              special_tokens=getattr(self.cfg, "special_tokens", []))
            shutil.rmtree(self.setup.checkpoint_dir / STAGING_DIR, ignore_errors=True)
        barrier()
        return self.stats()

    def stats(self) -> dict[str, Any]:
        """Losses and sizes of the run (every trainer's; DPO adds its reward figures)."""
        history = self.record["history"]
        losses = [[h["step"], float(h["loss"])] for h in history if "loss" in h]
        stats = {
            "train_loss": sum(v for _, v in losses) / len(losses) if losses else math.nan,
            "first_loss": losses[0][1] if losses else math.nan,
            "last_loss": losses[-1][1] if losses else math.nan,
            "losses": losses, "steps": int(self.record["steps"]),
            "max_steps": int(self.record["max_steps"]),
            "resumed_from_step": int(self.record.get("start_step", 0)),
            "runtime_s": round(time.perf_counter() - self.started, 3),
            "train_runtime_s": self.record["train_runtime"],
            "num_examples": self.kept, "dropped_examples": self.num_examples - self.kept,
            "answers_cut": self.cut,
            "trainable_params": self.trainable, "total_params": self.total, "lora": self.cfg.lora,
            "world_size": int(self.trainer.args.world_size), "device": self.setup.device,
            "bf16": self.setup.bf16, "out_dir": str(self.out_dir)}
        if self.hooks.is_main:
            self.log.info("%s: done, %d steps, loss %.4f -> %.4f (mean %.4f), %.1f s; wrote %s",
                          self.kind, stats["steps"], stats["first_loss"], stats["last_loss"],
                          stats["train_loss"], stats["runtime_s"], self.out_dir)
        if any(not math.isfinite(v) for _, v in losses):
            self.log.warning("%s: non-finite loss values were logged", self.kind)
        return stats

    def _log_start(self, resume: Path | None) -> None:
        if not self.hooks.is_main:
            return
        cfg = self.cfg
        batch = cfg.per_device_batch_size * max(self.trainer.args.world_size, 1)
        rows = batch * cfg.grad_accum
        over = epochs_of_steps(cfg.max_steps, batch, cfg.grad_accum, self.kept)
        if over > 3 * cfg.epochs:   # (the demos' own budgets stay under it: DPO 2.7 for 1)
            self.log.warning("%s: max_steps=%d over %d examples (%d a step) is %.1f epochs, where "
                             "epochs is %g: max_steps wins (a budget set for other data?); set "
                             "max_steps: -1 to train by epochs", self.kind, cfg.max_steps,
                             self.kept, rows, over, cfg.epochs)
        self.log.info("%s: %s on %s (%s), %d examples, %s parameters trainable of %s; precision "
                      "%s, weights %s; reference: %s; %s", self.kind,
                      f"LoRA r={cfg.lora_r}" if cfg.lora else "full fine-tuning",
                      self.setup.device, self.model_dir, self.kept, f"{self.trainable:,}",
                      f"{self.total:,}",
                      "bf16 autocast" if self.setup.bf16 else "fp32", cfg.dtype,
                      self.reference or "-",
                      f"resuming from {resume.name}" if resume else "no checkpoint to resume")

    def _release(self) -> None:
        """Free the trainer's model and optimizer now (GPU memory for whatever runs next)."""
        import gc

        import torch

        trainer = self.trainer
        if trainer is None:
            return
        trainer.accelerator.free_memory()
        trainer.model = trainer.model_wrapped = trainer.optimizer = trainer.lr_scheduler = None
        if getattr(trainer, "ref_model", None) is not None:
            trainer.ref_model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def epochs_of_steps(max_steps: int, batch: int, accum: int, examples: int) -> float:
    """The epochs ``max_steps`` optimizer steps make over ``examples`` (0 when training by
    epochs: ``max_steps`` -1), counted as the Trainer counts them: an epoch is its batches of
    ``batch`` rows (all processes together; the last one may be short) in steps of ``accum``.

    5 examples in batches of 4 make 2 steps an epoch, so 6 steps are 3 epochs (not 6 x 4 / 5):

    >>> epochs_of_steps(6, 4, 1, 5), epochs_of_steps(60, 4, 1, 12), epochs_of_steps(-1, 4, 1, 12)
    (3.0, 20.0, 0.0)
    >>> epochs_of_steps(4, 8, 1, 1), epochs_of_steps(10, 2, 4, 12)   # 6 batches: 2 steps an epoch
    (4.0, 5.0)
    """
    if max_steps <= 0 or not examples:
        return 0.0
    per_epoch = max(1, math.ceil(math.ceil(examples / batch) / accum))
    return max_steps / per_epoch


def answers_cut(dataset, max_length: int | None) -> int:
    """Tokenised examples whose answer ``max_length`` cuts (TRL keeps a long row's start): an
    SFT row truncated to ``max_length`` tokens (one exactly that long counts too), a DPO pair
    whose prompt and longer answer exceed it. Lengths are read from Arrow, not as lists.

    >>> from datasets import Dataset
    >>> answers_cut(Dataset.from_dict({"input_ids": [[1, 2, 3], [1, 2]]}), 3)
    1
    >>> pairs = {"prompt_ids": [[1, 2], [1]], "chosen_ids": [[3], [3]],
    ...          "rejected_ids": [[4, 5], [4]]}
    >>> answers_cut(Dataset.from_dict(pairs), 3), answers_cut(Dataset.from_dict(pairs), None)
    (1, 0)
    """
    import pyarrow.compute as pc

    columns = set(getattr(dataset, "column_names", None) or ())   # (not tokenised: 0)
    if max_length is None or not ({"input_ids"} <= columns or
                                  {"prompt_ids", "chosen_ids", "rejected_ids"} <= columns):
        return 0
    pairs = "chosen_ids" in columns
    names = ["prompt_ids", "chosen_ids", "rejected_ids"] if pairs else ["input_ids"]
    cut = 0
    for batch in dataset.select_columns(names).with_format("arrow").iter(batch_size=4096):
        lengths = [pc.list_value_length(batch[n]) for n in names]
        if pairs:
            longest = pc.add(lengths[0], pc.max_element_wise(lengths[1], lengths[2]))
            cut += pc.sum(pc.greater(longest, max_length)).as_py() or 0
        else:
            cut += pc.sum(pc.greater_equal(lengths[0], max_length)).as_py() or 0
    return cut


def param_counts(params) -> tuple[int, int]:
    """(trainable, total) numbers of parameters. Under DeepSpeed ZeRO-3 a parameter holds only
    its rank's partition (``numel()`` is 0) and ``ds_numel`` is its full size.

    >>> import torch
    >>> frozen = torch.nn.Parameter(torch.zeros(0), requires_grad=False)
    >>> frozen.ds_numel = 6                                 # as ZeRO-3 partitions it
    >>> param_counts([torch.nn.Parameter(torch.zeros(2, 2)), frozen])
    (4, 10)
    """
    trainable = total = 0
    for p in params:
        n = getattr(p, "ds_numel", p.numel())
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total


@contextlib.contextmanager
def quiet_progress_bars():
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
