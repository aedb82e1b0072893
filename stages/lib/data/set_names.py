"""Which evaluation set a config key names.

Rules keyed by set name (a prompt's answer styles, ``evaluate``'s per-set metrics, Self-RAG's
closed sets and FEVER sets, RAG-Instruct's scoring rules) all match a key to a set's name
(``dataset``: the file name of a folder of sets, or a row's own field) this one way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


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


def for_set(table: Mapping[str, T], dataset: str, default: T) -> T:
    """The value of the first key of ``table`` that names the set ``dataset``, else ``default``
    (a per-set setting: DPA-RAG's top-2 passages for WebQSP, top-3 elsewhere).

    >>> for_set({"webqsp": 2}, "WebQSP_test", 3), for_set({"webqsp": 2}, "nq", 3)
    (2, 3)
    """
    return next((value for key, value in table.items() if names_set(key, dataset)), default)
