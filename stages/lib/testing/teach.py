"""Teach a tiny random-init chat LM a few answers (plain torch, seconds on one CPU thread).

A random-init model says noise, so a pipeline test on it exercises little: every sampled
trajectory looks alike, every critic answer is unreadable. Tests that need some behaviour
teach it first: each step draws a batch of lessons — (conversation, assistant prefix, target) —
and takes one AdamW step on the mean loss of the targets (the prompt and prefix masked), the
target ending with the tokenizer's end token so that generation stops after it.

    def lessons(rng):
        return [([{"role": "user", "content": rng.choice(QUESTIONS)}], "", "[1]")]

    loss = teach(tiny_causal_lm(tmp / "lm"), lessons, steps=120, lr=3e-3)

With ``add_tokens`` the tokens are added to the tokenizer as special tokens (one id each), the
embeddings resized, and the tokenizer saved beside the model.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path

Lesson = tuple[list[dict], str, str]
"""(conversation, assistant prefix the answer continues, target text)."""


def lesson_tensors(tok, conversation: list[dict], prefix: str, target: str):
    """``(input_ids, labels)`` of one lesson: labels are -100 on the prompt and the prefix."""
    import torch

    prompt = tok.apply_chat_template(conversation, tokenize=False,
                                     add_generation_prompt=True) + prefix
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    t_ids = tok(target + tok.eos_token, add_special_tokens=False)["input_ids"]
    return torch.tensor([p_ids + t_ids]), torch.tensor([[-100] * len(p_ids) + t_ids])


def teach(path: str | Path, lessons: Callable[[random.Random], Sequence[Lesson]], steps: int,
          lr: float, seed: int = 0, add_tokens: Sequence[str] = ()) -> float:
    """Train the model at ``path`` in place on ``lessons(rng)`` per step; the last step's loss."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a tiny model on a shared small machine: one thread is fastest
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    if add_tokens:
        tok.add_tokens(list(add_tokens), special_tokens=True)
        model.resize_token_embeddings(len(tok))
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        batch = [lesson_tensors(tok, *lesson) for lesson in lessons(rng)]
        loss = torch.stack([model(input_ids=i, labels=lab).loss for i, lab in batch]).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(str(path))
    if add_tokens:
        tok.save_pretrained(str(path))
    return loss.item()


def safetensor_weights(path: str | Path) -> dict:
    """The tensors of the first ``*.safetensors`` file in a checkpoint directory (tests compare
    them before and after a training step)."""
    from safetensors.torch import load_file

    return load_file(str(next(Path(path).glob("*.safetensors"))))
