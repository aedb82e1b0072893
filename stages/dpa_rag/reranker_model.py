"""DPA-RAG's reranker: a Hugging Face encoder with a 2-way linear head on the first token.

Seed (``bge_joined_model.py``): BGE (``AutoModel``) + ``Linear(1024, 2)`` on the [CLS] state of
the (query, document) pair, logits [unaligned, aligned]. We read the width from the encoder's
config (``hidden_size``), so any encoder works, and ``pooling: mean`` reads the mean over the
pair's tokens instead of the first one, for encoders trained that way (sentence-transformers).

A saved reranker is a directory: the encoder (``save_pretrained``) and its tokenizer, the head
as ``head.safetensors`` (``weight``, ``bias``) and ``reranker.json`` (``passage_template``,
``max_length``, ``pooling``), so scoring reads documents exactly as training did.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.api import ConfigError
from stages.lib.data.row_template import unknown_field

HEAD_FILE = "head.safetensors"
META_FILE = "reranker.json"
RERANKER = "a DPA-RAG reranker (a dpa_rag.train_reranker step's output directory)"


def render(template: str, doc: dict | None, setting: str = "passage_template") -> str:
    """A document (a ``CTX`` struct: id, title, text, score) as the reranker reads it.

    >>> render(" Title: {title} Content: {text}", {"title": "Paris", "text": None})
    ' Title: Paris Content: '
    """
    fields = {k: ("" if v is None else v) for k, v in (doc or {}).items()}
    try:
        return template.format(**fields)
    except KeyError as e:
        raise unknown_field(setting, template, e.args[0], fields) from None


class Reranker:
    """The encoder, the head and the tokenizer, on one device; ``logits`` keeps gradients."""

    def __init__(self, encoder, head, tokenizer, passage_template: str, max_length: int,
                 device: str, pooling: str = "cls"):
        import inspect

        self.encoder, self.head, self.tokenizer = encoder, head, tokenizer
        self.passage_template, self.max_length, self.device = passage_template, max_length, device
        self.pooling = pooling
        self.accepts = set(inspect.signature(encoder.forward).parameters)

    def parameters(self) -> list:
        return list(self.encoder.parameters()) + list(self.head.parameters())

    def train(self, mode: bool = True) -> None:
        self.encoder.train(mode)
        self.head.train(mode)

    def embed(self, queries: list[str], passages: list[str]):
        """The (query, passage) pairs' vectors (N × hidden_size): the first token's last hidden
        state (``cls``, the seed's), or the mean over the pair's tokens (``mean``, for encoders
        trained with mean pooling, such as sentence-transformers' MiniLM)."""
        enc = self.tokenizer(queries, passages, padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt").to(self.device)
        hidden = self.encoder(**{k: v for k, v in enc.items() if k in self.accepts}) \
            .last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def logits(self, queries: list[str], passages: list[str]):
        """[unaligned, aligned] logits of the pairs (N × 2)."""
        return self.head(self.embed(queries, passages))


def build(encoder_dir: str | Path, passage_template: str, max_length: int,
          device: str, pooling: str = "cls") -> Reranker:
    """A reranker from an encoder checkpoint with a fresh head (``torch.nn.Linear``'s own
    initialisation, from torch's global RNG: seed it first)."""
    from stages.lib.models.checkpoint import check_reranker_encoder, empty_vocabulary

    check_reranker_encoder(encoder_dir, pooling)   # the wrong kind of model: one line, first
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    empty_vocabulary(tokenizer, encoder_dir)
    if tokenizer.pad_token is None:   # a causal LM's (mean pooling): pairs are padded in batches
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    encoder = AutoModel.from_pretrained(str(encoder_dir)).to(device)
    head = torch.nn.Linear(encoder.config.hidden_size, 2).to(device)
    return Reranker(encoder, head, tokenizer, passage_template, max_length, device, pooling)


def save(reranker: Reranker, out: str | Path) -> None:
    """Write the reranker directory (see the module docstring)."""
    from safetensors.torch import save_file

    out = Path(out)
    reranker.encoder.save_pretrained(str(out))
    reranker.tokenizer.save_pretrained(str(out))
    head = {k: v.detach().cpu().contiguous() for k, v in reranker.head.state_dict().items()}
    save_file(head, str(out / HEAD_FILE))
    (out / META_FILE).write_text(json.dumps({
        "passage_template": reranker.passage_template, "max_length": reranker.max_length,
        "pooling": reranker.pooling, "labels": ["unaligned", "aligned"],
        "score": "aligned logit"}, indent=1))


def load(model_dir: str | Path, device: str) -> Reranker:
    """A reranker written by :func:`save`, with its passage template and max length."""
    from stages.lib.models.checkpoint import (
        KINDS,
        check_reranker_encoder,
        describe,
        kind_of,
        read_checkpoint,
    )

    model_dir = Path(model_dir)
    do = "wire the model input to a dpa_rag.train_reranker step's output"
    if not (model_dir / META_FILE).is_file() or not (model_dir / HEAD_FILE).is_file():
        cfg, _ = read_checkpoint(model_dir, RERANKER)
        what = f" {describe(cfg)}, {KINDS[kind_of(cfg)]}," if cfg else ""
        raise ConfigError(f"{model_dir} is{what} not a DPA-RAG reranker (no {META_FILE} / "
                          f"{HEAD_FILE}): {do}",
                          hint="dpa_rag.train_reranker writes the encoder, its head and "
                               f"{META_FILE} to its output directory")
    meta = json.loads((model_dir / META_FILE).read_text())
    check_reranker_encoder(model_dir, meta.get("pooling", "cls"), do)
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    encoder = AutoModel.from_pretrained(str(model_dir)).to(device)
    head = torch.nn.Linear(encoder.config.hidden_size, 2)
    head.load_state_dict(load_file(str(model_dir / HEAD_FILE)))
    reranker = Reranker(encoder, head.to(device), tokenizer, meta["passage_template"],
                        int(meta["max_length"]), device, meta.get("pooling", "cls"))
    reranker.train(False)
    return reranker


def predict_logits(reranker: Reranker, queries: list[str], passages: list[str],
                   batch_size: int, progress=iter):
    """[unaligned, aligned] logits of every pair (N × 2, on the CPU), in eval mode and batches;
    the reranker's train/eval mode is restored afterwards. ``progress`` wraps the batch
    iterator (``ctx.progress``)."""
    import torch

    was_training = reranker.encoder.training
    reranker.train(False)
    out = []
    with torch.no_grad():
        for lo in progress(range(0, len(queries), batch_size)):
            hi = lo + batch_size
            out.append(reranker.logits(queries[lo:hi], passages[lo:hi]).float().cpu())
    reranker.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 2)


def score(reranker: Reranker, queries: list[str], passages: list[str], batch_size: int,
          progress=iter) -> list[float]:
    """The reranker's score of each (query, passage) pair: the class-1 ("aligned") logit, the
    same score the pair-wise rank loss trains (not the softmax probability, whose order can
    differ: it depends on both logits)."""
    return predict_logits(reranker, queries, passages, batch_size, progress)[:, 1].tolist()
