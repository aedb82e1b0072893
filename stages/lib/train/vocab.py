"""Tokens added to a model's vocabulary for training, and the loss left out inside spans.

Self-RAG's generator learns reflection tokens (``[Retrieval]``, ``<paragraph>``, ``[Relevant]``,
...) and never learns to reproduce the retrieved text between ``<paragraph>`` and
``</paragraph>``: ``SftConfig.special_tokens`` and ``SftConfig.masked_spans`` say so generically.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from orchestrator.api import ConfigError

IGNORE = -100


def add_tokens(tokenizer, tokens: Sequence[str]) -> dict[str, int]:
    """Add ``tokens`` as special tokens (never split, never merged); returns ``{token: id}``."""
    if tokens:
        tokenizer.add_tokens(list(tokens), special_tokens=True)
    return {t: tokenizer.convert_tokens_to_ids(t) for t in tokens}


def span_ids(tokenizer, spans: Sequence[Sequence[str]]) -> list[tuple[int, int]]:
    """``(open_id, close_id)`` per span; each marker must be one token of the tokenizer."""
    out = []
    for pair in spans:
        ids = []
        for token in pair:
            encoded = tokenizer(token, add_special_tokens=False)["input_ids"]
            if len(encoded) != 1:
                raise ConfigError(f"sft: masked_spans marker {token!r} is {len(encoded)} tokens of "
                                  "the tokenizer, not one",
                                  hint=f"add it to special_tokens: [{token!r}, ...]")
            ids.append(encoded[0])
        out.append((ids[0], ids[1]))
    return out


def mask_spans(input_ids: Sequence[int], labels: Sequence[int],
               spans: Sequence[tuple[int, int]]) -> list[int]:
    """``labels`` with every target token strictly between an open id and the next close id set
    to -100; the markers keep their labels. Scanning starts at the first supervised token, so
    markers inside the prompt change nothing; a span cut off by ``max_length`` masks to the end.

    >>> # prompt [1, 2] | target: 7 <p>=5 8 9 </p>=6 10 <p>=5 11 </p>=6 12
    >>> ids = [1, 2, 7, 5, 8, 9, 6, 10, 5, 11, 6, 12]
    >>> mask_spans(ids, [-100, -100] + ids[2:], [(5, 6)])
    [-100, -100, 7, 5, -100, -100, 6, 10, 5, -100, 6, 12]
    """
    out = list(labels)
    start = next((i for i, label in enumerate(out) if label != IGNORE), len(out))
    opens, closing = dict(spans), None
    for i in range(start, len(out)):
        token = input_ids[i]
        if closing is None:
            closing = opens.get(token)
        elif token == closing:
            closing = None
        else:
            out[i] = IGNORE
    return out


def masked_dataset(dataset, spans: Sequence[tuple[int, int]]):
    """A tokenised TRL dataset (``input_ids``, ``labels``) with :func:`mask_spans` applied and
    the examples left without any supervised token removed; returns (dataset, removed)."""
    masked = dataset.map(lambda ex: {"labels": mask_spans(ex["input_ids"], ex["labels"], spans)})
    kept = masked.filter(lambda ex: any(label != IGNORE for label in ex["labels"]))
    return kept, len(masked) - len(kept)


def resized_model(model_dir, tokenizer, dtype: str, seed: int, added: dict[str, int] | None = None,
                  init: str = "mean"):
    """The model with its embeddings grown to the tokenizer. New rows: the mean of the old ones
    plus seeded noise (transformers' default, ``init="mean"``), seeded N(0, initializer_range)
    (``init="normal"``, transformers before 4.46), or with ``init="pieces"`` the mean of the rows
    of the pieces that the model's own tokenizer splits each ``added`` token into (input and,
    when untied, output embeddings).

    A matrix never shrinks: a checkpoint padded beyond its tokenizer (Qwen2.5: 151,936 rows for
    151,665 tokens; Phi-3) keeps its rows, and the added tokens take padding rows, which were
    never trained; those rows, and any the resizing made from an average that counted them, are
    drawn again as ``init`` says from the rows of the model's own tokens (:func:`new_rows`).
    Without padding the rows are transformers' own draw, as before.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, device_map=None)
    set_seed(seed)
    rows = model.get_input_embeddings().num_embeddings
    base = AutoTokenizer.from_pretrained(str(model_dir))   # without the added tokens
    model.resize_token_embeddings(max(len(tokenizer), rows), mean_resizing=init != "normal")
    if init == "pieces" and added:
        pieces = {i: base(t, add_special_tokens=False)["input_ids"] for t, i in added.items()}
        embeddings_from_pieces(model, pieces)
    elif rows > len(base):   # padded: ids past the model's own tokens are new to it
        new_rows(model, sorted(i for i in (added or {}).values() if i >= len(base)),
                 len(base), init)
    return model


def new_rows(model, ids: list[int], known: int, init: str) -> None:
    """:func:`draw_rows` on the input and, when untied, output embeddings of ``model`` (the
    output layer's bias, if any: the mean of the known rows' for ``"mean"``, 0 otherwise)."""
    std = getattr(model.config.get_text_config(), "initializer_range", None) or 0.02
    for weight in _tables(model).values():
        with _gathered(weight):
            draw_rows(weight, ids, known, init, std)
    bias = getattr(model.get_output_embeddings(), "bias", None)
    if bias is not None and ids:
        import torch

        with _gathered(bias), torch.no_grad():
            bias[ids] = bias[:known].float().mean().to(bias.dtype) if init == "mean" else 0.0


def draw_rows(weight, ids: list[int], known: int, init: str = "mean", std: float = 0.02) -> None:
    """Set rows ``ids`` of ``weight`` in place from rows ``[0, known)``, the model's own tokens:
    ``"mean"``, their mean plus noise of 1e-9 times their covariance (transformers'
    ``mean_resizing``; the mean alone when that covariance is singular); ``"normal"``,
    N(0, ``std``). The other rows are left as they are.

    >>> import torch
    >>> w = torch.tensor([[1.0, 0.0], [3.0, 2.0], [7.0, 7.0], [7.0, 7.0]])   # 2 padding rows
    >>> draw_rows(w, [2], known=2)
    >>> w.tolist()
    [[1.0, 0.0], [3.0, 2.0], [2.0, 1.0], [7.0, 7.0]]
    """
    import torch

    if not ids:
        return
    with torch.no_grad():
        if init == "normal":
            drawn = torch.randn(len(ids), weight.shape[1], dtype=torch.float32) * std
        else:
            old = weight[:known].float()
            mean = old.mean(dim=0)
            covariance = 1e-9 * (old - mean).T @ (old - mean) / known
            if torch.distributions.constraints.positive_definite.check(covariance).all():
                normal = torch.distributions.MultivariateNormal(mean, covariance_matrix=covariance)
                drawn = normal.sample((len(ids),))
            else:
                drawn = mean.expand(len(ids), -1)
        weight[ids] = drawn.to(device=weight.device, dtype=weight.dtype)


def embeddings_from_pieces(model, pieces: dict[int, list[int]]) -> None:
    """:func:`rows_from_pieces` on the input and, when untied, output embeddings of ``model``.

    Under DeepSpeed ZeRO-3 (``from_pretrained`` after the training arguments) each rank holds
    one partition of a weight: the whole weight is gathered for the write, which rank 0 makes
    (every rank computes the same rows) and which is partitioned again on exit.
    """
    for weight in _tables(model).values():
        with _gathered(weight):
            rows_from_pieces(weight, pieces)


def _tables(model) -> dict:
    """The input and output embedding weights by ``id``: a tied pair counts once."""
    return {id(e.weight): e.weight
            for e in (model.get_input_embeddings(), model.get_output_embeddings())
            if e is not None}


def _gathered(weight):
    """The whole of a ZeRO-3 partitioned ``weight`` while inside; nothing to do otherwise."""
    if not hasattr(weight, "ds_id"):   # DeepSpeed marks the parameters it partitions
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters([weight], modifier_rank=0)


def rows_from_pieces(weight, pieces: dict[int, list[int]]) -> None:
    """Set each new row ``weight[new]`` to the mean of ``weight[old]`` over its pieces, in place.

    >>> import torch
    >>> w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0], [0.0, 0.0]])
    >>> rows_from_pieces(w, {3: [0, 2]})       # token 3 was spelled as tokens 0 and 2
    >>> w[3].tolist()
    [2.0, 1.5]
    """
    import torch

    with torch.no_grad():
        for new, old in pieces.items():
            if old:
                weight[new] = weight[list(old)].mean(dim=0)
