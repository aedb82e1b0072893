"""Stage ``dpa_rag.generator_data``: the reader's plain SFT rows, read from the aligned
reranker's top documents.

Seed step: SEEDS 3.2 step 8: after the pre-aligned stage the reader is fine-tuned on each
training query with its top-3 passages as reranked by the preference-aligned reranker (top-2 for
WebQSP), the target being the gold answer. The rows use the same prompt file as inference
(``infer_topk``'s ``prompt``, the recipe's reader prompt), so the model is trained on what it
is later asked. The target is the first gold answer. Only the queries of ``kinds`` are used
(a row without ``kind`` is ``original``; default: the original queries only). The README's SFT
data is the original queries "w/o data augmentation", with "Please merge your augmentation
data": the paper recipe (conf/dpa_rag_llama3.yaml) feeds the NLI-kept augmented set and lists
every kind.
``k_by_set`` gives another number of documents to the sets it names (a key is a whole word of
the row's ``dataset``), as the paper's top-2 for WebQSP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import DataError, StageContext, added, stage
from stages.lib.chat import assistant
from stages.lib.data.set_names import for_set
from stages.schemas import Chat, GeneratorPrompt, Retrieved


def _original() -> list[str]:
    return ["original"]


@dataclass
class GeneratorDataConfig:
    k: Annotated[int, Ge(0)] = 3       # documents per example (paper: top-3; WebQSP: 2)
    k_by_set: dict[str, Annotated[int, Ge(0)]] = added({})   # paper: {webqsp: 2}
    kinds: list[str] = field(default_factory=_original)   # dpa_rag.augment kinds used
    dataset: str | None = None         # answer style for all rows; None = each row's


@stage("dpa_rag.generator_data", version=2)  # 2: a question's options listed
def generator_data(reranked: Retrieved, prompt: GeneratorPrompt, cfg: GeneratorDataConfig,
                   ctx: StageContext) -> Chat:
    """One chat row per training query: its first ``k`` documents and question, then its
    first gold answer."""
    from stages.lib.prompts import generator_messages, passage_fields

    reader = prompt.load()
    out, skipped, n_rows = [], 0, 0
    for row in reranked.iter_rows():   # streamed: 1.27M augmented queries at the paper's scale
        n_rows += 1
        answers = [a for a in row.get("answers") or [] if a.strip()]
        if (row.get("kind") or "original") not in cfg.kinds or not answers:
            skipped += 1
            continue
        k = for_set(cfg.k_by_set, row.get("dataset") or "", cfg.k)
        docs = [passage_fields(d) for d in (row.get("ctxs") or [])[:k]]
        style = cfg.dataset if cfg.dataset is not None else (row.get("dataset") or "")
        ask = generator_messages(reader, row["question"], docs, style, row.get("choices") or [])
        out.append({"id": row["id"], "task": "generator",
                    "messages": [*ask, assistant(answers[0])]})
    if not out:
        raise DataError(f"step '{ctx.step}': none of {n_rows} queries has a gold answer "
                        f"and a kind in {cfg.kinds}", hint="check the training questions' "
                                                          "answers, or steps.<this step>.kinds")
    ctx.log.info("generator data: %d rows, top-%d documents (%d queries left out)", len(out),
                 cfg.k, skipped)
    return out
