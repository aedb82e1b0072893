"""Pseudo-query synthesis (Reinforced-IR step 1) as pure, seeded functions: the length, style
and stance constraints sampled per passage, and the reading of the model's query and
quality-control answers (the prompts themselves are files, ``conf/prompts/reinforced_ir/``).

Constraint weights are the original's: length "less than 5 words" ×2, "5 to 10 words" ×5,
"10 to 15 words" ×4, "at least 15 words" ×1; style "plain and simple" ×4, "common and formal"
×4, "casual and informal" ×2, "professional and complex" ×1.

Claims differ in two ways (the original's ``get_query_generation_prompt``): the length is drawn
from "10 to 15 words" ×5, "at least 15 words" ×2 (for every claim query type, ArguAna's too), and
the claim datasets (SciFact, FEVER, Climate-FEVER) ask each passage, at random with equal odds,
for a claim it supports or one it refutes (ArguAna: always one it refutes). Per passage the draws
come in the original's order: length, style, then the stance. The stance reaches the prompt as
``{relation}``, the verb saying what the passage does to the query: ``answers`` (a question),
``supports`` or ``refutes`` (a claim).

Few-shot examples (optional, as the original's ``use_examples=True``): a file of passages with
the query written for each (``load_examples``), rendered as one block into the query prompt's
``{examples}`` (``render_examples``); they add no draw.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LENGTHS = {"less than 5 words": 2, "5 to 10 words": 5, "10 to 15 words": 4, "at least 15 words": 1}
STYLES = {"plain and simple": 4, "common and formal": 4, "casual and informal": 2,
          "professional and complex": 1}
CLAIM_LENGTHS = {"10 to 15 words": 5, "at least 15 words": 2}
# SynthesizeConfig.stance: none = questions the passage answers; supports / refutes = claims the
# passage always supports / refutes (the original's ArguAna: refuted); random = either, drawn per
# passage (the original's SciFact, FEVER, Climate-FEVER)
STANCES = ("none", "supports", "refutes", "random")


def weighted(choices: Mapping[str, int], rng: random.Random) -> str:
    """One key drawn with its weight.

    >>> weighted({"a": 1, "b": 0}, random.Random(0))
    'a'
    """
    keys = list(choices)
    return rng.choices(keys, weights=[choices[k] for k in keys], k=1)[0]


def constraints(rng: random.Random, stance: str = "none") -> dict[str, str]:
    """The length, style and relation (``{relation}`` in the prompt) asked of one query.

    ``stance`` is :data:`STANCES`' choice. ``none`` draws a question's length and style, as
    before stances existed (two draws, the same ones), and the passage ``answers`` it. Any
    other stance draws a claim's length; ``random`` then draws the relation, with equal odds.

    >>> constraints(random.Random(0))
    {'length': '10 to 15 words', 'style': 'casual and informal', 'relation': 'answers'}
    >>> constraints(random.Random(0), stance="supports")
    {'length': 'at least 15 words', 'style': 'casual and informal', 'relation': 'supports'}
    >>> [constraints(random.Random(s), stance="random")["relation"] for s in range(4)]
    ['refutes', 'supports', 'supports', 'refutes']
    """
    if stance not in STANCES:
        raise ValueError(f"stance: {stance!r} is not one of {', '.join(STANCES)}")
    length = weighted(LENGTHS if stance == "none" else CLAIM_LENGTHS, rng)
    style = weighted(STYLES, rng)
    if stance == "random":
        relation = rng.choice(("supports", "refutes"))
    else:
        relation = "answers" if stance == "none" else stance
    return {"length": length, "style": style, "relation": relation}


def quality_relation(stance: str) -> str:
    """What quality control asks the passage to do to the query (``{relation}`` in the quality
    prompt): the original's check judges whether the passage "can answer" a question, "can
    support or refute" a claim of SciFact, FEVER or Climate-FEVER (whichever stance the claim
    was written with), and "can refute" an ArguAna claim.

    >>> [quality_relation(s) for s in STANCES]
    ['answers', 'supports', 'refutes', 'supports or refutes']
    """
    if stance not in STANCES:
        raise ValueError(f"stance: {stance!r} is not one of {', '.join(STANCES)}")
    return {"none": "answers", "random": "supports or refutes"}.get(stance, stance)


def clean_query(text: str) -> str:
    """The model's query: first non-empty line, quotes and a leading label removed.

    >>> clean_query('Query: "Who founded Velmora?"\\nBecause...')
    'Who founded Velmora?'
    """
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    for label in ("query:", "question:", "claim:"):
        if line.lower().startswith(label):
            line = line[len(label):].strip()
    return line.strip('"').strip("'").strip()


def quality_ok(text: str) -> bool:
    """The quality-control verdict: the answer contains "1" (the original's rule).

    >>> quality_ok("1"), quality_ok("0"), quality_ok("The answer is 1.")
    (True, False, True)
    """
    return "1" in text


# ---------------------------------------------------------------- few-shot examples
# The original's query prompt (get_query_generation_prompt with use_examples=True, as
# generate_universal_query.py calls it) shows three example passages with the query written for
# each, the same three for every passage of a dataset, after the constraints and before the
# output instruction. Here they are a file (synthesize's optional ``examples`` input, e.g.
# conf/prompts/reinforced_ir/query_examples.yaml) rendered into the query prompt's {examples}.

EXAMPLE_KEYS = ("header", "example", "examples")
EXAMPLE_FIELDS = ("i", "passage", "query", "query_type", "passage_type")
DEFAULT_HEADER = "Examples:"
DEFAULT_EXAMPLE = "Example {i}\nPassage:\n```\n{passage}\n```\nThe {query_type}: {query}"


@dataclass(frozen=True)
class Examples:
    """A loaded examples file: ``items`` are (passage, query) pairs, shown in file order."""

    items: tuple[tuple[str, str], ...]
    header: str = DEFAULT_HEADER
    example: str = DEFAULT_EXAMPLE
    path: str = ""


def load_examples(path: str | Path) -> Examples:
    """The few-shot examples file at ``path``; a one-line ``ConfigError`` naming the file (and
    the example) otherwise. Keys: ``examples`` (a non-empty list of ``{passage, query}``), and
    optionally ``header`` (the line before them) and ``example`` (one example, a template with
    {i} (from 1), {passage}, {query}, {query_type}, {passage_type}; it must use {passage} and
    {query})."""
    from orchestrator.api import ConfigError
    from stages.lib.prompts import template_fields
    from stages.lib.yaml_file import read_yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"examples file {path}: not found",
                          hint="see conf/prompts/reinforced_ir/query_examples.yaml")
    data = read_yaml(p, "examples file")
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list) \
            or not data["examples"]:
        raise ConfigError(f"examples file {path}: needs 'examples', a non-empty list of "
                          f"{{passage, query}}", hint="keys: " + ", ".join(EXAMPLE_KEYS))
    unknown = sorted(set(data) - set(EXAMPLE_KEYS))
    if unknown:
        raise ConfigError(f"examples file {path}: unknown key {unknown[0]!r}",
                          hint="keys: " + ", ".join(EXAMPLE_KEYS))
    for key in ("header", "example"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"examples file {path}: '{key}' must be a string")
    example = data.get("example", DEFAULT_EXAMPLE)
    used = template_fields(example, EXAMPLE_FIELDS, f"examples file {path}: 'example'")
    lacking = [(n, shown) for n, shown in (("passage", "passages"), ("query", "queries"))
               if n not in used]
    if lacking:
        raise ConfigError(f"examples file {path}: 'example' does not use {{{lacking[0][0]}}}, "
                          f"so the LLM never sees the examples' {lacking[0][1]}",
                          hint="add it, e.g. '" + DEFAULT_EXAMPLE.replace("\n", "\\n") + "'")
    items = []
    for n, item in enumerate(data["examples"], start=1):
        if not isinstance(item, dict) or set(item) != {"passage", "query"} or not all(
                isinstance(item[k], str) and item[k].strip() for k in ("passage", "query")):
            raise ConfigError(f"examples file {path}: example {n}: expected exactly 'passage' "
                              f"and 'query', each a non-empty string")
        items.append((item["passage"].strip(), item["query"].strip()))
    return Examples(tuple(items), data.get("header", DEFAULT_HEADER), example, str(path))


def render_examples(examples: Examples, query_type: str, passage_type: str) -> str:
    """The examples as one block for the query prompt's {examples}: the header, then each
    example (numbered from 1) separated by a blank line. The texts are shown as written (a
    brace in a passage is text, not a placeholder).

    >>> print(render_examples(Examples((("Velmora lies on the Tarn.", "Which river runs by "
    ...                                  "Velmora?"),)), "question", "passage"))
    Examples:
    Example 1
    Passage:
    ```
    Velmora lies on the Tarn.
    ```
    The question: Which river runs by Velmora?
    """
    shown = [examples.example.format(i=i, passage=p, query=q, query_type=query_type,
                                     passage_type=passage_type)
             for i, (p, q) in enumerate(examples.items, start=1)]
    return "\n".join(([examples.header] if examples.header else []) + ["\n\n".join(shown)])
