"""Shared by the training tests: a tiny causal LM (built once per session), chat and preference
rows, a logger that keeps its messages, and one 6-step full SFT run that the DPO tests start from."""

from __future__ import annotations

import logging

import pytest

from stages.lib.train import SftConfig, TrainHooks, sft_train

TEXTS = [f"Query: question {i} Retrieved Content: 1. Topic: t{i} Content: c{i}" for i in range(8)]
FAST = dict(lr=1e-2, per_device_batch_size=2, grad_accum=1, max_length=64, warmup_ratio=0.0)


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def make_logger(name: str) -> tuple[logging.Logger, ListHandler]:
    logger = logging.getLogger(f"test_train.{name}")
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


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    from stages.lib.testing.tiny import tiny_causal_lm
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm", texts=TEXTS)


@pytest.fixture(scope="session")
def sft_full(tiny_lm, tmp_path_factory):
    """Full fine-tuning, 6 steps (one torch thread): (out_dir, stats, log messages)."""
    import torch

    logger, handler = make_logger("sft_full")
    out = tmp_path_factory.mktemp("sft_full") / "model"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        stats = sft_train(tiny_lm, chat_rows(), out, SftConfig(lora=False, max_steps=6, **FAST),
                          TrainHooks(log=logger))
    finally:
        torch.set_num_threads(threads)
    return out, stats, handler.messages
