"""DPA-RAG's NLI filter rule (SEEDS 3.2 step 4, ``NLI_filter.py``): which augmentations of a
query survive, given the NLI label of (premise = the original query, hypothesis = the
augmentation).

Only ``contradiction`` removes anything: an augmentation the model finds ``neutral`` (a
decomposition or an added constraint rarely entails its original) passes like an entailed one.
Two scopes:

* ``query`` (the seed's): a query whose checked augmentations include any contradiction loses
  all its augmentations, the unchecked ones too. The seed dropped the whole ``back_trans`` row,
  which held only the augmentations; the original query is a training query of its own and is
  always kept.
* ``augmentation``: only the contradicting augmentations are dropped.

A worked example, one query with four augmentations, three checked::

    labels                              query scope        augmentation scope
    rephrase: entailment                dropped            kept
    complexity: contradiction           dropped            dropped
    decompose: neutral                  dropped            kept
    sparql: None (not checked)          dropped            kept
"""

from __future__ import annotations

from typing import Literal

from orchestrator.api import ConfigError

LABELS = ("entailment", "neutral", "contradiction")
Scope = Literal["query", "augmentation"]


def nli_labels(id2label: dict, where: str = "model") -> dict[int, str]:
    """A model's ``id2label`` as class id -> ``entailment``/``neutral``/``contradiction``
    (case-insensitive; ids may be strings, as in a ``config.json``).

    >>> nli_labels({"0": "ENTAILMENT", "1": "Neutral", "2": "contradiction"})
    {0: 'entailment', 1: 'neutral', 2: 'contradiction'}
    >>> nli_labels({0: "LABEL_0", 1: "LABEL_1"})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ConfigError: model: the labels ['LABEL_0', 'LABEL_1'] are not NLI labels
    """
    labels = {int(i): str(name).strip().lower() for i, name in id2label.items()}
    if sorted(labels.values()) != sorted(LABELS):
        names = [id2label[i] for i in sorted(id2label, key=int)]
        raise ConfigError(f"{where}: the labels {names} are not NLI labels (need exactly "
                          f"{', '.join(LABELS)}, in any order and case)",
                          hint="wire a 3-way NLI sequence-classification checkpoint (paper: "
                               "MoritzLaurer/mDeBERTa-v3-base-xnli-multilingual-nli-2mil7)")
    return labels


def kept(labels: dict[str, str | None], scope: Scope = "query") -> list[str]:
    """The augmentations of one query the filter keeps, in the order given (its original is
    always kept and is not listed). ``labels`` maps each augmentation (its kind here; the stage
    uses row ids) to its NLI label, None where it was not checked.

    >>> labels = {"rephrase": "entailment", "complexity": "contradiction",
    ...           "decompose": "neutral", "sparql": None}
    >>> kept(labels, "query")
    []
    >>> kept(labels, "augmentation")
    ['rephrase', 'decompose', 'sparql']
    >>> kept({"rephrase": "entailment", "decompose": "neutral", "sparql": None}, "query")
    ['rephrase', 'decompose', 'sparql']
    """
    if scope not in ("query", "augmentation"):
        raise ValueError(f"scope must be 'query' or 'augmentation', got {scope!r}")
    contradicted = [kind for kind, label in labels.items() if label == "contradiction"]
    if scope == "query" and contradicted:
        return []
    return [kind for kind in labels if kind not in contradicted]
