"""Which evaluation set a config key names.

Rules keyed by set name (a prompt's answer styles, ``evaluate``'s per-set metrics, Self-RAG's
closed sets and FEVER sets, RAG-Instruct's scoring rules) all match a key to a set's name
(``dataset``: the file name of a folder of sets, or a row's own field) this one way.
"""

from __future__ import annotations

import re


def names_set(key: str, dataset: str) -> bool:
    """Whether a config key (``fever``, ``arc``, ...) names the set ``dataset``: it occurs in the
    lower-cased name as a whole word, so letters around it do not count (``arc`` names
    ``arc_challenge`` and ``ARC-Easy``, not ``msmarco``; ``fever`` names ``fever_dev``, not
    ``feverous``). Every rule keyed by set name (answer style, metrics, scoring) matches this way.

    >>> [names_set("arc", d) for d in ("arc_challenge", "ARC-Easy", "msmarco", "arc2")]
    [True, True, False, True]
    >>> names_set("fever", "feverous"), names_set("", "nq")
    (False, False)
    """
    key = key.lower()
    return bool(key) and re.search(rf"(^|[^a-z]){re.escape(key)}([^a-z]|$)",
                                   (dataset or "").lower()) is not None
