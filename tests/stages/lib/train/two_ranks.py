"""One rank of the two-process SFT in test_finetune.py (started by ``torch.distributed.run``):
``python two_ranks.py MODEL_DIR ROOT [CRASH_AT]``; prints one ``RESULT {...}`` line."""

import json
import logging
import os
import sys
from pathlib import Path

import torch
from transformers import TrainerCallback

from stages.lib.train import SftConfig, TrainHooks, sft_train

torch.set_num_threads(1)
model_dir, root = Path(sys.argv[1]), Path(sys.argv[2])
crash_at = int(sys.argv[3]) if len(sys.argv) > 3 else 0
rank = int(os.environ["RANK"])
logging.basicConfig(level=logging.INFO, format=f"rank{rank} %(message)s")


class Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == crash_at:
            raise SystemExit(f"rank{rank}: simulated crash at step {crash_at}")


rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": f"Query: question {i}"},
                                     {"role": "assistant", "content": f"[{i % 3 + 1}]"}]}
        for i in range(8)]
cfg = SftConfig(lr=1e-2, max_steps=4, save_steps=2, per_device_batch_size=2, grad_accum=1,
                max_length=64)
hooks = TrainHooks(log=logging.getLogger("sft"), checkpoint_dir=root / "scratch",
                   is_main=rank == 0, callbacks=[Crash()])
stats = sft_train(model_dir, rows, root / f"out-rank{rank}", cfg, hooks)
print("RESULT " + json.dumps({"rank": rank, **{k: stats[k] for k in (
    "steps", "world_size", "resumed_from_step", "losses")}}), flush=True)
