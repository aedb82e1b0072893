"""Dense text encoding with a Hugging Face encoder (Contriever, MiniLM, E5, BGE ...).

Contriever (the seeds' retriever, SEEDS.md 0.1) uses *mean* pooling over non-padding tokens and
no normalisation; DPR-style encoders use the ``[CLS]`` vector. Texts are batched by length
(longest first, so an out-of-memory error shows on the first batch) and returned in input order.

    >>> enc = Encoder("runs/minilm", pooling="mean", normalize=True)   # doctest: +SKIP
    >>> enc.encode(["who wrote hamlet"]).shape                          # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first.

    >>> length_batches([1, 5, 3, 4], 2)
    [[1, 3], [2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _wrap(progress: Callable | None, iterable: Iterable) -> Iterable:
    return progress(iterable) if progress is not None else iterable


class Encoder:
    """An encoder loaded once; :meth:`encode` maps texts to float32 vectors."""

    def __init__(self, model_dir: str | Path, *, pooling: str = "mean", normalize: bool = False,
                 max_length: int = 512, device: str = "cpu", fp16: bool | None = None):
        from stages.lib.models.checkpoint import check_encoder, empty_vocabulary

        check_encoder(model_dir, pooling)   # the wrong kind of model: one line, before loading
        import torch
        from transformers import AutoModel, AutoTokenizer

        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling, self.normalize, self.max_length = pooling, normalize, max_length
        self.device = torch.device(device)
        self.fp16 = (self.device.type == "cuda") if fp16 is None else fp16
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        empty_vocabulary(self.tokenizer, model_dir)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.tokenizer.padding_side = "right"
        model = AutoModel.from_pretrained(str(model_dir))
        if self.fp16:
            model = model.half()
        self.model = model.to(self.device).eval()
        self._accepts = set(inspect.signature(self.model.forward).parameters)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and max_length > limit:
            log.warning("max_length %d exceeds the encoder's %d positions; using %d",
                        max_length, limit, limit)
            self.max_length = limit

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               progress: Callable | None = None) -> np.ndarray:
        """Embeddings of ``texts`` as a ``(len(texts), dim)`` float32 array, in input order."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        batches = length_batches([len(t) for t in texts], batch_size)
        with torch.inference_mode():
            for idx in _wrap(progress, batches):
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items() if k in self._accepts}
                hidden = self.model(**enc).last_hidden_state.float()
                if self.pooling == "mean":
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                else:
                    vec = hidden[:, 0]
                if self.normalize:
                    vec = torch.nn.functional.normalize(vec, dim=-1)
                out[idx] = vec.cpu().numpy()
        return out


def encode(model_dir: str | Path, texts: Sequence[str], pooling: str = "mean",
           normalize: bool = False, max_length: int = 512, batch_size: int = 64,
           device: str = "cpu", fp16: bool | None = None,
           progress: Callable | None = None) -> np.ndarray:
    """Encode ``texts`` with the encoder in ``model_dir``: a ``(n, dim)`` float32 array.

    ``pooling`` is "mean" (masked mean over tokens, Contriever/MiniLM) or "cls"; ``fp16``
    defaults to on for CUDA; ``progress`` wraps the batch iterator (a progress bar).
    """
    enc = Encoder(model_dir, pooling=pooling, normalize=normalize, max_length=max_length,
                  device=device, fp16=fp16)
    return enc.encode(texts, batch_size=batch_size, progress=progress)
