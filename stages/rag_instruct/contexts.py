"""Stage ``rag_instruct.contexts``: each synthesised example with the documents it is trained
with: its source documents D* and noise documents from far down its question's ranking.

Seed step: SEEDS 4.3 steps 4-5. The seed retrieved 250 passages for each q* (``--n_docs 250``,
the shared ``retrieve`` stage here, wired as ``retrieved``) and the paper builds every example
from all of D* plus noise drawn from the ranks beyond the top 200, 10 documents in all; that
step had no released code. Where D* goes among the noise is not said: ``shuffle: true`` mixes
them (seeded), ``false`` puts D* first.

An example with fewer candidates beyond ``noise_from`` than it needs gets the ones there are
(the log counts such examples): on a corpus smaller than the paper's, lower ``noise_from``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import DataError, StageContext, stage
from stages.rag_instruct.noise import training_documents
from stages.rag_instruct.schemas import Grounded, Synthesized
from stages.schemas import Retrieved


@dataclass
class ContextsConfig:
    n_docs: Annotated[int, Ge(1)] = 10        # paper: 10 documents per example
    noise_from: Annotated[int, Ge(0)] = 200   # paper: noise from the ranks beyond the top 200
    shuffle: bool = True
    seed: Annotated[int, Ge(0)] = 42


@stage("rag_instruct.contexts", version=1)
def contexts(synthesized: Synthesized, retrieved: Retrieved, cfg: ContextsConfig,
             ctx: StageContext) -> Grounded:
    """Examples with ``ctxs``: D* and noise, ``n_docs`` in all."""
    ranked, ranks = noise_candidates(retrieved, cfg.noise_from)
    rng = random.Random(cfg.seed)
    out, short = [], 0
    for row in synthesized.iter_rows():
        if row["id"] not in ranked:
            raise DataError(f"step '{ctx.step}': example {row['id']!r} has no retrieved "
                            "passages", hint="wire the retrieve step run over the synthesised "
                                             "examples as inputs.retrieved")
        docs = training_documents(row["docs"], ranked[row["id"]], cfg.n_docs, 0, rng,
                                  cfg.shuffle)     # ranked[...] starts at rank noise_from
        short += len(docs) < cfg.n_docs
        out.append({**{k: row[k] for k in ("id", "dataset", "question", "answers", "gold",
                                            "paradigm")},
                    "ctxs": [{**d, "score": d.get("score")} for d in docs]})
    ctx.log.info("contexts: %d examples, %d documents each (noise from rank %d); %d with fewer",
                 len(out), cfg.n_docs, cfg.noise_from + 1, short)
    if short:   # silently fewer documents would train on another task than the paper's
        ctx.log.warning("contexts: %d of %d examples have fewer than %d documents: at most %d "
                        "passages were retrieved per question, noise is drawn from rank %d on; "
                        "on a small corpus lower noise_from (rag_instruct.noise_from) below the "
                        "retrieval depth (retrieval.noise_k)", short, len(out), cfg.n_docs, ranks,
                        cfg.noise_from + 1)
    return out


def noise_candidates(retrieved: Retrieved, noise_from: int) -> tuple[dict[str, list], int]:
    """Each question's passages from rank ``noise_from`` on (the only ones noise is drawn
    from), and the most passages any question has, read a row group at a time: the paper's 250
    passages for 40,000 questions took about 22 GB as Python values (memory audit 44)."""
    import pyarrow.compute as pc

    ranked: dict[str, list] = {}
    ranks = 0
    for piece in retrieved.iter_tables(128, columns=["id", "ctxs"]):   # ~25 MiB of 250 passages
        ctxs = piece.column("ctxs")
        ranks = max(ranks, pc.max(pc.list_value_length(ctxs)).as_py() or 0)
        tail = pc.list_slice(ctxs, noise_from) if noise_from else ctxs
        ranked.update(zip(piece.column("id").to_pylist(), (c or [] for c in tail.to_pylist())))
    return ranked, ranks
