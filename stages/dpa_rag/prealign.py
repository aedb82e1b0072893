"""Stage ``dpa_rag.prealign``: the pre-aligned task that comes before the reader's plain SFT.

Seed step: SEEDS 3.2 step 7 (no released code or template text). For each preference document
(aligned or unaligned for this reader), the paper shows it among ``k - 1`` random documents of
the same query's retrieval and asks the reader to judge the knowledge that helps answering, so
that it learns, implicitly, which knowledge it can use. Here the reader is asked whether the
document at one position helps answer the question, and the target is the word ``labels``
gives its outcome ("Yes" for aligned, "No" for unaligned). The question is a prompt file
(``conf/prompts/dpa_rag/prealign.yaml``, fields ``{question}``, ``{passages}``,
``{position}``), our own wording: the template was not released, so replace the file (and the
labels) with the paper's text to reproduce it.

The random documents and the preference document's position are drawn with ``seed``; rows come
from every query in the knowledge, augmented ones included. ``per_query: 1`` keeps one
preference document per query, drawn at random among its labelled ones, as the paper describes
the stage (SEEDS 3.2 step 7: "for each query, one preference document and k - 1 random ones");
the default, every labelled document, gives the reader more rows from the same knowledge.
``k_by_set`` shows another number of documents for the sets it names (a key is a whole word of
the row's ``dataset``), as the paper's top-2 for WebQSP.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import ConfigError, DataError, StageContext, added, stage
from stages.dpa_rag.categories import ORDER
from stages.dpa_rag.knowledge_rows import queries
from stages.dpa_rag.schemas import Knowledge, PrealignPrompt
from stages.lib.chat import assistant
from stages.lib.data.set_names import for_set
from stages.schemas import Chat


def _labels() -> dict[str, str]:
    return {"aligned": "Yes", "unaligned": "No"}


@dataclass
class PrealignConfig:
    k: Annotated[int, Ge(1)] = 3      # documents shown (paper: top-k, the SFT's 3)
    k_by_set: dict[str, Annotated[int, Ge(1)]] = added({})   # paper: {webqsp: 2}
    # target per outcome; documents of an outcome not listed are not used (paper: aligned or
    # unaligned documents)
    labels: dict[str, str] = field(default_factory=_labels)
    # documents of each outcome used per query, drawn with the seed; None = all (the paper
    # caps no outcome)
    max_per_outcome: Annotated[int, Ge(1)] | None = None
    # preference documents per query, drawn with the seed after max_per_outcome; None = all
    # (paper: 1)
    per_query: Annotated[int, Ge(1)] | None = added(None)
    seed: Annotated[int, Ge(0)] = 42

    def __post_init__(self):
        # an outcome no document has (a typo: ``both_incorect``) would silently leave its
        # documents out, and the reader would learn one answer only
        check_labels(self.labels)


def check_labels(labels: dict[str, str]) -> None:
    """ConfigError unless ``labels`` maps outcomes of :data:`~stages.dpa_rag.categories.ORDER`
    to non-empty targets.

    >>> check_labels({"aligned": "Yes", "both_incorrect": "No"})
    >>> try:
    ...     check_labels({"aligned": "Yes", "unalinged": "No"})
    ... except ConfigError as e:
    ...     print(e.args[0])
    labels: unknown outcome 'unalinged' (did you mean 'unaligned'?)
    """
    import difflib

    if not labels:
        raise ConfigError("labels: empty; no document would be used",
                          hint=f"map outcomes to targets, e.g. {_labels()} (outcomes: "
                               f"{', '.join(ORDER)})")
    for outcome, target in labels.items():
        if outcome not in ORDER:
            close = difflib.get_close_matches(outcome, ORDER, n=1)
            raise ConfigError(f"labels: unknown outcome {outcome!r}"
                              + (f" (did you mean {close[0]!r}?)" if close else ""),
                              hint=f"outcomes: {', '.join(ORDER)}")
        if not str(target).strip():
            raise ConfigError(f"labels.{outcome}: empty target",
                              hint="give the word the reader should answer, e.g. Yes or No")


@stage("dpa_rag.prealign", version=1)
def prealign(knowledge: Knowledge, prompt: PrealignPrompt, cfg: PrealignConfig, ctx: StageContext) -> Chat:
    """One chat row per preference document (at most ``per_query`` of a query): the question
    over ``k`` documents, then the judgement of the document at ``{position}``."""
    from stages.lib.prompts import format_passages, messages, passage_fields

    template = prompt.load()
    rng = random.Random(cfg.seed)
    out, counts, n_queries = [], {}, 0
    for qid, docs in queries(knowledge):   # one query's rows at a time: 21M rows at paper scale
        n_queries += 1
        for pref in _chosen(docs, cfg, rng):
            others = [d["doc"] for d in docs if d["rank"] != pref["rank"]]
            k = for_set(cfg.k_by_set, pref.get("dataset") or "", cfg.k)
            shown = rng.sample(others, min(k - 1, len(others)))
            position = rng.randint(0, len(shown))
            shown.insert(position, pref["doc"])
            passages = format_passages(template, [passage_fields(d) for d in shown])
            ask = messages(template, question=pref["question"], passages=passages,
                           position=position + 1)
            out.append({"id": f"{qid}@{pref['rank']}", "task": "prealign",
                        "messages": [*ask, assistant(cfg.labels[pref["category"]])]})
            counts[pref["category"]] = counts.get(pref["category"], 0) + 1
    if not out:
        raise DataError(f"step '{ctx.step}': no document of {n_queries} queries has an "
                        f"outcome in labels {sorted(cfg.labels)}",
                        hint="read more documents per query (preference.n_docs) or add "
                             "outcomes to labels (both_correct, both_incorrect)")
    ctx.log.info("prealign: %d rows from %d queries (%s), %d documents each", len(out),
                 n_queries, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), cfg.k)
    targets = {cfg.labels[k] for k in counts}
    if len(set(cfg.labels.values())) > 1 and len(targets) == 1:
        missing = sorted(k for k in cfg.labels if k not in counts)
        ctx.log.warning("prealign: every row's target is %r: no document has the outcome %s, so "
                        "the pre-aligned reader learns one answer only (read more documents per "
                        "query, or add outcomes to labels)", next(iter(targets)),
                        " or ".join(missing))
    return out


def _chosen(docs: list[dict], cfg: PrealignConfig, rng: random.Random) -> list[dict]:
    """The query's documents whose outcome has a label, at most ``max_per_outcome`` of each
    and ``per_query`` in all (a random draw, kept in the order of ``labels``)."""
    out = []
    for outcome in cfg.labels:
        of = [d for d in docs if d["category"] == outcome]
        if cfg.max_per_outcome is not None and len(of) > cfg.max_per_outcome:
            of = rng.sample(of, cfg.max_per_outcome)
        out += of
    if cfg.per_query is not None and len(out) > cfg.per_query:
        keep = set(rng.sample(range(len(out)), cfg.per_query))
        out = [d for i, d in enumerate(out) if i in keep]
    return out
