"""Stage ``dpa_rag.preference``: the reader's preference knowledge, one row per (query, document).

Seed step: SEEDS 3.2 step 2 (no released code; the released validation and test files show what
was stored: ``{question, reference, ctx, before: {answer, em, f1}, after: {answer, em, f1},
category}``). The reader LLM, the model the recipe aligns to, answers every query once with no
document and once with each of its first ``n_docs`` retrieved documents alone. Each answer is
scored against the golds (``em`` and token F1, as stored in the released files), and the
document gets its outcome (:mod:`stages.dpa_rag.categories`): aligned, unaligned, both correct
or both incorrect.

"Correct" is ``correct_by``: ``match_gold_in_pred`` (a normalised gold answer occurs in the
normalised answer; default) or ``exact_match`` (SQuAD's EM: the answer is a gold). The released
files' ``em`` behaves as the former: of their 80 answers (40 rows, ``before`` and ``after``) it
agrees with ``match_gold_in_pred`` on all 80 and with SQuAD's exact match on 72 only; "Queen
Elizabeth II" for the gold "Elizabeth II", "Edappadi K. Palaniswami" for "K. Palaniswami" or
"The first time LeBron James went to the finals was in 2007." for "2007" have ``em`` 1. The stored
``before_em`` / ``after_em`` columns stay SQuAD's exact match whatever ``correct_by`` is;
``before_f1`` / ``after_f1`` are SQuAD's token F1, which matches the released ``f1`` on all 80
answers (the reranker's rows use them: :func:`stages.dpa_rag.categories.side`). The reader
answers greedily with the recipe's reader prompt (a standard RAG prompt:
``conf/prompts/common/rag.yaml``; its ``no_passages`` text stands for the missing document).

The reader is the checkpoint wired as ``model`` (an open reader, run in this process), or
``reader``, an LLM endpoint (:class:`~stages.lib.endpoint.EndpointConfig`): the paper's
black-box readers, GPT-3.5 and GPT-4, are only reachable through an API, and their preferences
are mined by asking it the same conversations (``max_new_tokens`` as ``max_tokens``, greedy;
each reply cached as it arrives, so a killed step resumes without asking twice). Exactly one of
the two is given, which ``rag plan`` checks (:mod:`stages.lib.models.reader`); ``reader`` unset
stays out of the cache key. ``conf/dpa_rag/black_box.yaml`` is the recipe variant.

Queries from ``dpa_rag.augment`` keep their ``source_id`` and ``kind``; plain questions get
their own id and ``original``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import StageContext, added, nonsemantic, stage
from stages.dpa_rag.categories import category
from stages.dpa_rag.schemas import Knowledge
from stages.lib.endpoint import EndpointConfig
from stages.schemas import GeneratorPrompt, Model, Retrieved


@dataclass
class PreferenceConfig:
    n_docs: Annotated[int, Ge(1)] = 100     # documents read per query (paper: DPR top-100)
    # released files' "em": the gold occurs in the answer (80/80 answers; SQuAD EM: 72/80)
    correct_by: Literal["exact_match", "match_gold_in_pred"] = "match_gold_in_pred"
    max_new_tokens: Annotated[int, Ge(1)] = 20  # the seed's inference command: 20
    dataset: str | None = None              # answer style for all rows; None = each row's
    backend: Literal["auto", "transformers", "vllm"] = "auto"   # the `model` input's
    batch_size: Annotated[int, Ge(1)] = nonsemantic(16)
    # an LLM endpoint as the reader, instead of the `model` input (the paper's GPT-3.5 / GPT-4)
    reader: EndpointConfig | None = added(None)

    def plan_notes(self, resources: dict) -> list[str]:
        """``rag plan``: the reader endpoint, if any; refuses both a reader and a wired model,
        or neither (see :func:`stages.lib.models.reader.reader_notes`)."""
        from stages.lib.models.reader import reader_notes

        return reader_notes(self.reader, resources)


BLOCK = 512   # queries read, answered and scored at a time: 51,712 conversations at 100 documents


@stage("dpa_rag.preference", version=4, shard_by="retrieved",  # 4: end of turn; quoted letters
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def preference(retrieved: Retrieved, prompt: GeneratorPrompt, cfg: PreferenceConfig, ctx: StageContext,
               model: Model | None = None) -> Knowledge:
    """For each query and each of its first ``n_docs`` documents: the reader's answer (``model``,
    or the ``reader`` endpoint) without and with the document, their scores, and the
    document's outcome.

    ``BLOCK`` queries at a time: the reader is loaded once, and a block's rows, conversations
    and answers are let go once its output rows are built, where every query's were held at
    once (``bench/bench_preference.py``).
    """
    import pyarrow as pa

    from stages.lib.models.reader import open_reader

    reader = prompt.load()
    answered = _answered(retrieved)
    if answered < retrieved.num_rows:   # nothing to score them against
        ctx.log.warning("preference: %d of %d queries have no gold answer and are left out",
                        retrieved.num_rows - answered, retrieved.num_rows)
    if not answered:
        return []
    tables, counts = [], {"queries": 0, "right": 0}
    with open_reader(model=model, reader=cfg.reader, ctx=ctx, backend=cfg.backend,
                     batch_size=cfg.batch_size) as ask:
        for block in retrieved.iter_batches(BLOCK):
            rows = [r for r in block if r.get("answers")]
            if rows:
                done = counts["queries"]
                desc = (f"reader (queries {done + 1}-{done + len(rows)} of {answered})"
                        if answered > len(rows) else "reader")
                out = _block(rows, reader, cfg, ask, desc, counts)
                tables.append(Knowledge.from_rows(out, where=f"step '{ctx.step}' output"))
    ctx.log.info("preference: %d queries (%d right without a document), %d documents: %s",
                 counts["queries"], counts["right"], sum(t.num_rows for t in tables),
                 ", ".join(f"{k} {counts.get(k, 0)}" for k in
                           ("aligned", "unaligned", "both_correct", "both_incorrect")))
    return pa.concat_tables(tables)


def _answered(retrieved: Retrieved) -> int:
    """How many queries have a gold answer, from the ``answers`` column alone."""
    import pyarrow.compute as pc

    golds = retrieved.read(columns=["answers"]).column("answers")
    return int(pc.sum(pc.greater(pc.fill_null(pc.list_value_length(golds), 0), 0)).as_py() or 0)


def _block(rows: list[dict], reader, cfg: PreferenceConfig, ask, desc: str,
           counts: dict) -> list[dict]:
    """The output rows of one block of queries (each with a gold answer); ``counts`` gains its
    queries, those right without a document, and each outcome."""
    from stages.lib.metrics.answer import METRICS, exact_match, token_f1
    from stages.lib.prompts import generator_messages, passage_fields

    convs, where = [], []   # where[i] = (row index, document index or None for "before")
    for r, row in enumerate(rows):
        style = cfg.dataset if cfg.dataset is not None else (row.get("dataset") or "")
        docs = [passage_fields(d) for d in (row.get("ctxs") or [])[:cfg.n_docs]]
        row["ctxs"] = docs
        for d in [None, *range(len(docs))]:
            shown = [] if d is None else [docs[d]]
            convs.append(generator_messages(reader, row["question"], shown, style,
                                            row.get("choices") or []))
            where.append((r, d))
    answers = ask(convs, max_new_tokens=cfg.max_new_tokens, temperature=0.0, desc=desc)
    correct = METRICS[cfg.correct_by]
    before: dict[int, tuple[str, float, float, bool]] = {}
    out = []
    for (r, d), said in zip(where, answers):
        golds = rows[r]["answers"]
        scored = (said, exact_match(said, golds), token_f1(said, golds),
                  correct(said, golds) >= 1.0)
        if d is None:
            before[r] = scored
            continue
        row, (b_answer, b_em, b_f1, b_ok) = rows[r], before[r]
        outcome = category(b_ok, scored[3])
        counts[outcome] = counts.get(outcome, 0) + 1
        out.append({"id": row["id"], "dataset": row.get("dataset"), "question": row["question"],
                    "answers": row["answers"], "gold": row.get("gold") or [],
                    "source_id": row.get("source_id") or row["id"],
                    "kind": row.get("kind") or "original",
                    "doc": row["ctxs"][d], "rank": d + 1,
                    "before": b_answer, "before_em": b_em, "before_f1": b_f1,
                    "after": scored[0], "after_em": scored[1], "after_f1": scored[2],
                    "category": outcome})
    counts["queries"] += len(rows)
    counts["right"] += sum(b[3] for b in before.values())
    return out
