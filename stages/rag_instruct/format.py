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
Difference: each example's wrapper is drawn once, here, so every SFT epoch trains on the same
prompt; the seed draws it in its DataLoader's ``collate_fn``, anew in each epoch (the ``sft``
stage trains on fixed rows; conf/rag_instruct_llama3.yaml notes it at ``epochs``). The
wrappers are a file (``conf/prompts/rag_instruct/wrappers.yaml``, our own wording) a user can
replace with the paper's text. Each row's ``task`` is its paradigm, so the SFT summary counts them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from orchestrator.api import DataError, StageContext, stage
from stages.lib.chat import assistant, message
from stages.rag_instruct.schemas import WrapperFile
from stages.schemas import Chat, Retrieved


@dataclass
class FormatConfig:
    seed: int = 42


@stage("rag_instruct.format", version=1)
def format_examples(examples: Retrieved, wrappers: WrapperFile, cfg: FormatConfig,
                    ctx: StageContext) -> Chat:
    """One chat row per example: the wrapped prompt, then the answer."""
    from stages.rag_instruct.wrappers import load_wrappers, render

    w = load_wrappers(wrappers.path)
    rng = random.Random(cfg.seed)
    out = []
    for row in examples.rows():
        answers = [a for a in row.get("answers") or [] if a.strip()]
        if not answers:
            raise DataError(f"step '{ctx.step}': example {row['id']!r} has no answer")
        prompt = render(w, row["question"], row.get("ctxs") or [], rng)
        out.append({"id": row["id"], "task": row.get("paradigm") or "rag_instruct",
                    "messages": [message("user", prompt), assistant(answers[0])]})
    ctx.log.info("format: %d chat rows, %d wrappers", len(out), len(w.wrappers))
    return out
