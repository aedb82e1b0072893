"""Stage ``dpa_rag.nli_filter``: drop the augmentations an NLI model finds contradict their
original query.

Seed step: ``NLI_filter.py`` (SEEDS 3.2 step 4). For the first three augmentations of each query
(rephrase, complexity, decompose: ``check_kinds``) the checkpoint wired as ``model`` (paper:
MoritzLaurer/mDeBERTa-v3-base-xnli-multilingual-nli-2mil7) reads premise = the original query,
hypothesis = the augmentation; softmax over entailment / neutral / contradiction, argmax. The
rule that decides what stays is :mod:`stages.dpa_rag.nli` (``scope``: ``query``, the seed's, or
``augmentation``). The kept rows come out with an ``nli`` column: the label, null for the
originals and the augmentations not checked. The log counts the labels and the kept rows per
kind.

Fixes relative to the seed: the model and tokenizer are loaded once (the seed reloaded them for
every pair); the labels are read from the checkpoint's ``id2label`` (any order, any case; a
model without exactly those three labels is refused before it runs); the checked augmentations
are named by kind rather than by position; the original query is kept (see ``nli``); model and
data are inputs, not hard-coded paths. The model runs in float32: it is base-sized, and half
precision could flip a close argmax.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import ConfigError, DataError, StageContext, nonsemantic, stage
from stages.dpa_rag.augment import Kind
from stages.dpa_rag.nli import Scope, kept, nli_labels
from stages.dpa_rag.schemas import Augmented
from stages.schemas import Model

NLI = ("a 3-way NLI classifier (a *ForSequenceClassification checkpoint labelled entailment, "
       "neutral, contradiction)")
PAPER_NLI = "MoritzLaurer/mDeBERTa-v3-base-xnli-multilingual-nli-2mil7"


@dataclass
class NliFilterConfig:
    # the augmentations checked (seed: the first three of five); the others pass unchecked
    check_kinds: list[Kind] = field(default_factory=lambda: ["rephrase", "complexity",
                                                             "decompose"])
    scope: Scope = "query"   # seed: one contradiction drops all of a query's augmentations
    batch_size: Annotated[int, Ge(1)] = nonsemantic(64)   # seed: one pair at a time
    max_length: Annotated[int, Ge(1)] = 512        # (premise, hypothesis) tokens

    def __post_init__(self):
        if not self.check_kinds:
            raise ConfigError("check_kinds: empty (nothing would be checked)",
                              hint="e.g. [rephrase, complexity, decompose], the seed's")


@stage("dpa_rag.nli_filter", version=1)
def nli_filter(augmented: Augmented, model: Model, cfg: NliFilterConfig,
               ctx: StageContext) -> Augmented:
    """The originals and the augmentations the NLI rule keeps, each with its ``nli`` label."""
    rows = augmented.rows()
    originals = {r["id"]: r["question"] for r in rows if r["kind"] == "original"}
    checked = [r for r in rows if r["kind"] in cfg.check_kinds]
    orphans = [r for r in checked if r["source_id"] not in originals]
    if orphans:
        raise DataError(f"steps.{ctx.step}: augmentation {orphans[0]['id']!r} has no original "
                        f"query (source_id {orphans[0]['source_id']!r}) in the input",
                        hint="filter the whole output of dpa_rag.augment")
    labels = _classify(model.path, [originals[r["source_id"]] for r in checked],
                       [r["question"] for r in checked], cfg, ctx)
    label_of = {r["id"]: label for r, label in zip(checked, labels)}

    per_query: dict[str, dict[str, str | None]] = {}
    for r in rows:
        if r["kind"] != "original":
            per_query.setdefault(r["source_id"], {})[r["id"]] = label_of.get(r["id"])
    keep = {i for query in per_query.values() for i in kept(query, cfg.scope)}
    out = [r for r in rows if r["kind"] == "original" or r["id"] in keep]

    counts = Counter((r["kind"], label_of[r["id"]]) for r in checked)
    by_kind = {k: {lab: n for (kind, lab), n in sorted(counts.items()) if kind == k}
               for k in dict.fromkeys(r["kind"] for r in checked)}
    total = Counter(r["kind"] for r in rows if r["kind"] != "original")
    left = Counter(r["kind"] for r in out if r["kind"] != "original")
    ctx.log.info("nli_filter (scope %s): labels per kind %s", cfg.scope, by_kind)
    ctx.log.info("nli_filter: kept %d of %d augmentations of %d queries; per kind %s",
                 sum(left.values()), sum(total.values()), len(originals),
                 {k: f"{left[k]}/{n}" for k, n in total.items()})
    return _with_labels(augmented.read(), {r["id"] for r in out}, label_of)


def _with_labels(table, kept_ids: set[str], label_of: dict[str, str]):
    """The kept rows of ``table`` (every column, extras too) with the ``nli`` column, typed
    string even when every value is null, so its type does not depend on the data."""
    import pyarrow as pa

    ids = table.column("id").to_pylist()
    table = table.filter(pa.array([i in kept_ids for i in ids], type=pa.bool_()))
    labels = pa.array([label_of.get(i) for i in ids if i in kept_ids], type=pa.string())
    return table.append_column("nli", labels)


def _classify(model_dir, premises: list[str], hypotheses: list[str], cfg: NliFilterConfig,
              ctx: StageContext) -> list[str]:
    """The argmax NLI label of each (premise, hypothesis), the model loaded once."""
    from stages.lib.models.checkpoint import check_classifier, empty_vocabulary

    check_classifier(model_dir, NLI, do=f"wire an NLI checkpoint (paper: {PAPER_NLI})",
                     hint="an NLI model's config.json lists a *ForSequenceClassification "
                          "architecture and the labels entailment, neutral, contradiction")
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(str(model_dir))
    names = nli_labels(config.id2label, where=f"steps.{ctx.step}: model {model_dir}")
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    empty_vocabulary(tok, model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir),
                                                               dtype=torch.float32)
    model.to(ctx.device).eval()
    labels: list[str] = []
    starts = range(0, len(premises), cfg.batch_size)
    with torch.inference_mode():
        for s in ctx.progress(starts, desc="nli"):
            enc = tok(premises[s:s + cfg.batch_size], hypotheses[s:s + cfg.batch_size],
                      padding=True, truncation=True, max_length=cfg.max_length,
                      return_tensors="pt").to(ctx.device)
            probs = torch.softmax(model(**enc).logits.float(), dim=-1)
            labels += [names[i] for i in probs.argmax(dim=-1).tolist()]
    return labels
