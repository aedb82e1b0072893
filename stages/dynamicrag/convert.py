"""Stage ``dynamicrag.convert``: DynamicRAG SFT conversations for the reranker and the generator roles.

Seed steps: ``reranker_sequence.py`` (SEEDS 1.3 step 5: reranker BC targets) and
``construct_generator_sft.py`` (step 7: generator SFT on the expert-relevant passages), plus the
Alpaca data the paper trains on jointly (step 8), passed in as ``extra``. Output is TRL's
conversational ``messages`` format instead of LLaMA-Factory Alpaca JSON.

* reranker rows (task ``reranker``): :func:`reranker_messages` over the first ``num_docs``
  passages, answered with the target ids, ``"[3], [7]"`` or ``"None"``;
* generator rows (task ``generator``): :func:`generator_messages` over the item's relevant
  passages only (the first ``max_generator_docs``), answered with the first non-empty gold answer;
* extra rows (task ``extra``): passed through unchanged.

All rows are shuffled with ``seed``.

Fixes relative to the seeds: one passage format (``Topic:``) for training and inference; a BC
target that points past the ``num_docs`` passages shown in the prompt is dropped (and counted)
instead of training on ids the model cannot see. The answer style of a generator row comes from
its ``dataset`` (the loader's ``dataset``/``source`` field, else an id prefix such as
``fever_``, else the file name), where the seed looked for a set's name anywhere in the id: an
id such as ``12345_fever`` with no ``dataset`` field gets the short-answer style here.

Follows the paper rather than the original code on one point (fidelity review B5): every
generator row uses its item's monoT5-relevant passages. In the original, items the BC loop never
reached (it stops at 30,000 rows) were never given ``true_id``, so most generator SFT rows got
``Retrieved Content: None``; here no item loses its labels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from typing import Annotated

from annotated_types import Ge

from orchestrator.api import StageContext, stage
from stages.dynamicrag.buckets import true_false_ids
from stages.dynamicrag.prompts import format_selection, reranker_messages
from stages.dynamicrag.schemas import BCTargets, RerankerPrompt
from stages.lib.chat import assistant
from stages.lib.metrics.answer import usable_golds
from stages.lib.prompts import generator_messages
from stages.schemas import Chat, GeneratorPrompt, Reranked


@dataclass
class ConvertConfig:
    num_docs: Annotated[int, Ge(1)] = 40   # passages in a reranker prompt (paper: top-40)
    max_generator_docs: Annotated[int, Ge(0)] = 15  # relevant passages per generator prompt (paper: 15)
    seed: Annotated[int, Ge(0)] = 0  # shuffle of the combined rows


@stage("dynamicrag.convert", version=3)  # 3: generator rows list a question's options
def convert(bc: BCTargets, sft: Reranked, reranker_prompt: RerankerPrompt, generator_prompt: GeneratorPrompt,
            cfg: ConvertConfig, ctx: StageContext, extra: Chat | None = None) -> Chat:
    """Reranker BC + generator SFT (+ extra) chat rows, shuffled."""
    reranker, generator = reranker_prompt.load(), generator_prompt.load()
    out: list[dict] = []

    past_window = 0
    for row in bc.iter_rows():   # streamed: only the chat rows are held whole
        docs = (row.get("ctxs") or [])[: cfg.num_docs]
        sequence = list(row.get("sequence") or [])
        if any(i > len(docs) for i in sequence):
            past_window += 1
            continue
        messages = reranker_messages(reranker, row["question"], docs)
        messages.append(assistant(format_selection(sequence)))
        out.append({"id": f"{row['id']}:reranker:{row['sequence_length']}", "task": "reranker",
                    "messages": messages})
    n_reranker = len(out)
    if past_window:
        ctx.log.warning("dropped %d BC targets that select passages beyond the first %d "
                        "(num_docs); retrieve at most num_docs passages, or raise num_docs",
                        past_window, cfg.num_docs)

    no_answer = 0
    for row in sft.iter_rows():
        golds = usable_golds(row.get("answers"))
        if not golds:
            no_answer += 1
            continue
        ctxs = row.get("ctxs") or []
        true_ids, _ = true_false_ids(ctxs)
        docs = [ctxs[i - 1] for i in true_ids[: cfg.max_generator_docs]]
        messages = generator_messages(generator, row["question"], docs,
                                      row.get("dataset") or row["id"], row.get("choices") or [])
        messages.append(assistant(golds[0]))
        out.append({"id": f"{row['id']}:generator", "task": "generator", "messages": messages})
    n_generator = len(out) - n_reranker
    if no_answer:
        ctx.log.warning("skipped %d generator SFT questions without a non-empty gold answer",
                        no_answer)

    n_extra = 0
    if extra is not None:
        for row in extra.iter_rows():
            out.append({"id": row["id"], "task": "extra", "messages": row["messages"]})
            n_extra += 1

    random.Random(cfg.seed).shuffle(out)
    ctx.log.info("chat rows: %d reranker, %d generator, %d extra", n_reranker, n_generator,
                 n_extra)
    return out
