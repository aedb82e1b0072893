"""A ``TrainerCallback`` sending loss, lr and DPO reward figures to the step's log."""

from __future__ import annotations

import logging
from typing import Any

from stages.lib.train.hooks import ProgressFn

# trainer log keys shown on each step line, and their short labels
SHOWN = (("grad_norm", "grad_norm {:.3f}"), ("mean_token_accuracy", "tok_acc {:.4f}"),
         ("rewards/margins", "margin {:.4f}"), ("rewards/accuracies", "reward_acc {:.4f}"),
         ("rewards/chosen", "r_chosen {:.4f}"), ("rewards/rejected", "r_rejected {:.4f}"))


def step_line(kind: str, step: int, max_steps: int, epoch: float, logs: dict[str, Any]) -> str:
    """One log line for an optimizer step.

    >>> step_line("dpo", 3, 8, 0.375, {"loss": 0.6931, "learning_rate": 5e-5, "rewards/margins": 0.01})
    'dpo step 3/8 epoch 0.38 loss 0.6931 lr 5.000e-05 margin 0.0100'
    """
    parts = [f"{kind} step {step}/{max_steps}", f"epoch {epoch:.2f}",
             f"loss {float(logs['loss']):.4f}"]
    if "learning_rate" in logs:
        parts.append(f"lr {float(logs['learning_rate']):.3e}")
    for key, shown in SHOWN:
        if logs.get(key) is not None:
            parts.append(shown.format(float(logs[key])))
    return " ".join(parts)


def log_callback(kind: str, log: logging.Logger, progress: ProgressFn | None, record: dict):
    """The callback; it writes the step the run starts from into ``record["start_step"]``."""
    from transformers import TrainerCallback

    class LogCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            record["start_step"] = state.global_step
            if not state.is_world_process_zero:
                return
            scheduler = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
            log.info("%s: %d optimizer steps (%s), batch %d x accum %d x %d process(es), "
                     "lr %.3g %s, warmup %d step(s)", kind, state.max_steps,
                     f"resuming at step {state.global_step}" if state.global_step
                     else "from step 0", args.per_device_train_batch_size,
                     args.gradient_accumulation_steps, max(args.world_size, 1),
                     args.learning_rate, scheduler, args.get_warmup_steps(state.max_steps))

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs and state.is_world_process_zero:
                epoch = logs.get("epoch", state.epoch or 0)
                log.info(step_line(kind, state.global_step, state.max_steps, epoch, logs))

        def on_step_end(self, args, state, control, **kwargs):
            if progress is not None and state.is_world_process_zero:
                progress(state.global_step, state.max_steps)
            if state.global_step >= state.max_steps:
                # the last step's loss is logged whatever logging_steps says (the stats' last
                # loss; with logging_steps above the run's steps no loss was logged at all)
                control.should_log = True
            return control

    return LogCallback()
