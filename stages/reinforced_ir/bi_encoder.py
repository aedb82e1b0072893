"""Training a bi-encoder retriever with Reinforced-IR's loss (SEEDS §5.4), one process.

Per step, a batch of B groups: each query with G passages (a positive drawn from ``pos``, then
G − 1 negatives drawn from ``neg``, re-sorted by the teacher's scores when they exist) and its
augmentation. With query, passage and augmentation embeddings q, p, a:

    loss = norm_regulariser(a) + m3_kd_loss(q·pᵀ / τ, G) + info_nce(q, a, τ_a)

(``loss: contrastive`` replaces the sequential softmax by one cross-entropy on the positive.)
Every group's passages compete with every query in the batch. The model is trained in place of
the encoder and saved with its tokenizer; checkpoints (model, optimizer, scheduler, step, RNG)
go to the step's scratch directory every ``save_steps`` and a rerun resumes from the last one.
Multi-GPU (cross-device negatives) is not implemented: the step runs as one process.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Batch:
    queries: list[str]
    passages: list[str]        # B·G, group after group
    augmentations: list[str]


def make_group(row: dict, group_size: int, rng: random.Random) -> list[str]:
    """Positive first, then G − 1 negatives (sampled with repetition when there are too few),
    in the teacher's order when the row has teacher scores.

    >>> make_group({"pos": ["p"], "neg": ["a", "b", "c"], "neg_scores": [1.0, 0.5, 0.33]}, 3,
    ...            random.Random(0))
    ['p', 'b', 'c']
    """
    negs, scores = list(row["neg"]), list(row.get("neg_scores") or [])
    need = group_size - 1
    if not negs:
        picked = []
    elif len(negs) >= need:
        picked = rng.sample(range(len(negs)), need)
    else:
        picked = (list(range(len(negs))) * (need // len(negs) + 1))[:need]
        rng.shuffle(picked)
    if len(scores) == len(negs) and scores:
        picked.sort(key=lambda i: -scores[i])
    return [rng.choice(list(row["pos"]))] + [negs[i] for i in picked]


def batches(rows: list[dict], batch_size: int, group_size: int, seed: int, epoch: int):
    """The epoch's batches in a seeded order (the last partial batch is dropped, as the paper's
    ``dataloader_drop_last``), with query/passage/augmentation texts."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(rows)))
    rng.shuffle(order)
    for lo in range(0, len(order) - batch_size + 1, batch_size):
        chosen = [rows[i] for i in order[lo:lo + batch_size]]
        yield Batch([r["query"] for r in chosen],
                    [p for r in chosen for p in make_group(r, group_size, rng)],
                    [r.get("augmentation") or "" for r in chosen])


class Embedder:
    """A transformers encoder with pooling, trainable (gradients flow)."""

    def __init__(self, model_dir: str | Path, pooling: str, normalize: bool, max_length: int,
                 device: str):
        import inspect

        from stages.lib.models.checkpoint import check_encoder, empty_vocabulary

        check_encoder(model_dir, pooling)   # the wrong kind of model: one line, before loading
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        empty_vocabulary(self.tokenizer, model_dir)
        if self.tokenizer.pad_token is None:   # an LLM embedder's: batches are padded
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.model = AutoModel.from_pretrained(str(model_dir)).to(device)
        self.accepts = set(inspect.signature(self.model.forward).parameters)
        self.pooling, self.normalize = pooling, normalize
        self.max_length, self.device = max_length, device

    def __call__(self, texts: list[str]):
        import torch

        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt").to(self.device)
        hidden = self.model(**{k: v for k, v in enc.items() if k in self.accepts}).last_hidden_state
        if self.pooling == "mean":
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        else:
            vec = hidden[:, 0]
        return torch.nn.functional.normalize(vec, dim=-1) if self.normalize else vec


def step_loss(embed: Callable, batch: Batch, group_size: int, temperature: float,
              answer_temperature: float, loss: str, sides: Callable[[Batch], Batch]):
    """The scalar loss of one batch and its parts (floats, for the log)."""
    from stages.reinforced_ir.losses import info_nce, m3_kd_loss, norm_regulariser
    import torch.nn.functional as F

    batch = sides(batch)
    q, p, a = embed(batch.queries), embed(batch.passages), embed(batch.augmentations)
    scores = q @ p.T / temperature
    if loss == "m3_kd":
        retrieval = m3_kd_loss(scores, group_size)
    else:
        import torch

        retrieval = F.cross_entropy(scores, torch.arange(q.size(0), device=q.device) * group_size)
    align, norm = info_nce(q, a, answer_temperature), norm_regulariser(a)
    total = retrieval + align + norm
    return total, {"retrieval": retrieval.item(), "answer": align.item(), "norm": norm.item()}
