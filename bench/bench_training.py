"""Training step time on a CPU, measured: prints figures, asserts nothing.

    python bench/bench_training.py MODEL_DIR            # e.g. the demo's SmolLM2 checkpoint
    python bench/bench_training.py MODEL_DIR --rounds 5 --sft-steps 6 --dpo-steps 3

LoRA SFT and DPO (``stages.lib.train``, as the ``sft`` and ``dpo`` stages run them) on RAG-shaped
rows like the demo's: a system prompt, a question and three passages of about 110 words (about
400 tokens), and a short answer. Each round runs both trainers twice, with TRL's fused LM head
projecting only the labelled positions (``stages/lib/train/lm_head.py``, what a CPU run does)
and projecting every position (TRL's own CPU behaviour), in alternating order so that a change
of load on the machine hits both alike. Printed: the seconds per optimizer step of each
(``train_runtime`` over the steps: model loading and export excluded), and the median of the
per-round ratios with the lowest and highest.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import tempfile
from pathlib import Path

WORDS = ("river valley council harbour station museum record northern league island bridge "
         "festival century author painter colony railway temple garden market treaty").split()


def passage(rng: random.Random, i: int) -> str:
    return f"[{i}] Title: {rng.choice(WORDS).title()}\n" + " ".join(rng.choices(WORDS, k=110))


def sft_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"id": f"q{i}", "messages": [
        {"role": "system", "content": "Answer the question from the passages, briefly."},
        {"role": "user", "content": f"Question: who founded the {rng.choice(WORDS)} {i}?\n\n"
         + "\n\n".join(passage(rng, j) for j in (1, 2, 3))},
        {"role": "assistant", "content": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)}"}]}
        for i in range(n)]


def dpo_rows(n: int, seed: int = 1) -> list[dict]:
    rows = sft_rows(n, seed)
    return [{"id": r["id"], "prompt": r["messages"][:2], "chosen": [r["messages"][2]],
             "rejected": [{"role": "assistant", "content": "None of the passages say."}]}
            for r in rows]


def step_seconds(kind: str, model_dir: str, steps: int, compact: bool, work: Path) -> float:
    from stages.lib.train import DpoConfig, SftConfig, TrainHooks, dpo_train, sft_train
    from stages.lib.train import finetune

    switch = finetune.labelled_positions_only
    if not compact:
        finetune.labelled_positions_only = contextlib.nullcontext
    try:
        common = dict(lora=True, max_steps=steps, grad_accum=1, warmup_ratio=0.0)
        if kind == "sft":
            stats = sft_train(model_dir, sft_rows(4 * steps), work / "sft",
                              SftConfig(per_device_batch_size=4, max_length=640, **common),
                              TrainHooks())
        else:
            stats = dpo_train(model_dir, dpo_rows(2 * steps), work / "dpo",
                              DpoConfig(per_device_batch_size=2, max_length=768, **common),
                              TrainHooks())
    finally:
        finetune.labelled_positions_only = switch
    return stats["train_runtime_s"] / stats["steps"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sft-steps", type=int, default=4, help="optimizer steps, batch 4")
    ap.add_argument("--dpo-steps", type=int, default=2, help="optimizer steps, batch 2 pairs")
    args = ap.parse_args()
    steps = {"sft": args.sft_steps, "dpo": args.dpo_steps}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        for kind in ("sft", "dpo"):
            ratios, times = [], {True: [], False: []}
            for r in range(args.rounds):
                order = (True, False) if r % 2 == 0 else (False, True)
                got = {c: step_seconds(kind, args.model_dir, steps[kind], c, Path(tmp))
                       for c in order}
                for c in order:
                    times[c].append(got[c])
                ratios.append(got[False] / got[True])
                print(f"{kind} round {r + 1}: labelled positions {got[True]:.2f} s/step, "
                      f"every position {got[False]:.2f} s/step, {ratios[-1]:.2f}x", flush=True)
            print(f"{kind}: labelled positions median {statistics.median(times[True]):.2f} "
                  f"s/step, every position {statistics.median(times[False]):.2f} s/step; "
                  f"speed-up median {statistics.median(ratios):.2f}x (lowest "
                  f"{min(ratios):.2f}x, highest {max(ratios):.2f}x)", flush=True)


if __name__ == "__main__":
    main()
