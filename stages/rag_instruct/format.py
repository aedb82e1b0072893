"""Stage ``rag_instruct.format``: training examples as chat rows, each in one of the seven
RAG prompt wrappers.

Seed step: ``train_rag_sft.py`` (SEEDS 4.4): a wrapper drawn uniformly at random per example
(Alpaca-style "### Instruction", "Reference Document: ...", "Given the text below ...", ...),
the documents as numbered lines, an example without documents in the plain
``### Instruction / ### Response`` form; the user turn is the wrapped prompt, the assistant
turn the answer, and the loss is on the answer only (the ``sft`` stage's default).

Documents are rendered from their text in a numbering style drawn at random from the wrapper
file's ``document_styles``; the shipped file lists one, ``[i] text``, what the seed ran (its
documents are strings, always numbered so; its branch for document objects, which draws ``[i]``,
``i.`` or no number, fails on them). Fixes relative to the seed: the draws are seeded.

The seed draws the wrapper in its DataLoader's ``collate_fn``, so each SFT epoch shows an
example in a fresh wrapper. ``epochs: E`` does the same with fixed rows: E blocks of rows, one
per epoch, each holding every example once (id ``<id>#<epoch>``) in its own draw and in its
own seeded order, for an ``sft`` step that trains one pass over them in row order
(``epochs: 1, shuffle: false``; the paper recipe sets all three). ``epochs: 1`` (the default)
is one block in the input's order, for an ``sft`` step that shuffles and repeats it. The
wrappers are a file (``conf/prompts/rag_instruct/wrappers.yaml``, our own wording) a user can
replace with the paper's text. Each row's ``task`` is its paradigm, so the SFT summary counts them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import DataError, StageContext, added, stage
from stages.lib.chat import assistant, message
from stages.rag_instruct.schemas import WrapperFile
from stages.schemas import Chat, Retrieved


@dataclass
class FormatConfig:
    seed: Annotated[int, Ge(0)] = 42
    # blocks of rows, one per SFT epoch, each with its own wrapper draws and order (see above)
    epochs: Annotated[int, Ge(1)] = added(1)


@stage("rag_instruct.format", version=1)
def format_examples(examples: Retrieved, wrappers: WrapperFile, cfg: FormatConfig,
                    ctx: StageContext) -> Chat:
    """One chat row per example and epoch: the wrapped prompt, then the answer."""
    from stages.rag_instruct.wrappers import load_wrappers, render

    w = load_wrappers(wrappers.path)
    rows = examples.rows()
    for row in rows:
        if not any(a.strip() for a in row.get("answers") or []):
            raise DataError(f"step '{ctx.step}': example {row['id']!r} has no answer")
    rng = random.Random(cfg.seed)
    out = []
    for epoch in range(cfg.epochs):
        block = rows if cfg.epochs == 1 else rng.sample(rows, len(rows))
        for row in block:
            answer = next(a for a in row["answers"] if a.strip())
            prompt = render(w, row["question"], row.get("ctxs") or [], rng)
            out.append({"id": row["id"] if cfg.epochs == 1 else f"{row['id']}#{epoch}",
                        "task": row.get("paradigm") or "rag_instruct",
                        "messages": [message("user", prompt), assistant(answer)]})
    ctx.log.info("format: %d chat rows (%d example(s) x %d epoch(s)), %d wrappers", len(out),
                 len(rows), cfg.epochs, len(w.wrappers))
    return out
