"""DynamicRAG trajectory reward (SEEDS 1.3 step 10) as pure functions on explicit [0, 1] scales.

For a question with gold answers G and sampled trajectories (selected passage ids, generator
response r), the reward of r is

    reward(r) = sum_c  w_c * part_c(r),   part_c(r) = mean over g in G of component_c(g, r)

with the five components of the paper (each in [0, 1]):

==================  ============================================================================
``bertscore``       BERTScore F1 (rescaled with baseline, clamped to [0, 1]); optional extra
``rouge_l``         ROUGE-L F-measure ("textual fluency")
``containment_em``  1 if the lowercased, stripped gold is in the response or vice versa ("EM")
``length_penalty``  1 / (1 + number of passages this trajectory selected); gold-independent
``judge``           an LLM judge's "Score: N" (0..100) divided by 100
==================  ============================================================================

The paper weighs all five 0.2 (:data:`PAPER_WEIGHTS`). If every response of the group is the same
string there is no preference signal and every reward is 0.

Fixes relative to the seed code (each would have made the reward wrong or crash):

* Length penalty uses the trajectory's *own* selection; the seed passed all 8 id lists, so it was
  the constant 1/9 for every response.
* The judge's answer is parsed to a number and divided by 100; the seed returned the raw string
  (TypeError on ``0.2 * str``), and on 0..100 it would have swamped the [0, 1] components.
* Gold answers are a list; a plain string gold is one answer (the seed iterated its characters).
* ``containment_em`` is 0 for a whitespace-only response: the seed stripped it to "" after
  its emptiness test, and ``"" in r`` is always true (an empty one it already scored 0).
* BERTScore and the judge are used only when their weight is non-zero, and a non-zero weight
  without a scorer is an error rather than a silent 0.
* A judge whose replies mostly carry no score (empty, cut off at ``max_tokens``) fails the step
  (:func:`judge_unscored`) instead of scoring every response 0.

Not as the seed: G holds each gold answer once (the load step keeps distinct strings), where
the seed averaged over every entry of its answer list, so a string listed twice weighed twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from stages.lib.metrics.answer import pltrdy_rouge_l_f, rouge_l, usable_golds


COMPONENTS = ("bertscore", "rouge_l", "containment_em", "length_penalty", "judge")
ROUGE_IMPLEMENTATIONS = ("rouge_score", "pltrdy")
PAPER_WEIGHTS = {name: 0.2 for name in COMPONENTS}
MAX_UNSCORED = 0.05
"""The share of judge replies without a score above which the reward step fails."""

_SCORE = re.compile(r"score\s*[:=]?\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_BARE = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*\.?\s*")   # the whole reply is the number

BertScorer = Callable[[list[str], list[str]], list[float]]
"""``bertscore(candidates, references) -> F1 per pair`` (batched)."""
Judge = Callable[[str, str, str], "str | float"]
"""``judge(question, gold, response) -> the judge's reply ("... Score: 85") or a 0..100 number``."""


class GroupScore(NamedTuple):
    rewards: list[float]            # one reward per response, in input order
    parts: list[dict[str, float]]   # per response: component -> mean over golds (computed ones)


def containment_em(gold: str, response: str) -> float:
    """DynamicRAG's "EM": 1.0 if lowercased, stripped gold and response contain one another.

    >>> containment_em("Paris", "The capital is paris."), containment_em("Paris, France", "paris")
    (1.0, 1.0)
    >>> containment_em("Paris", "Lyon"), containment_em("", "anything")
    (0.0, 0.0)
    """
    g, r = gold.lower().strip(), response.lower().strip()
    if not g or not r:
        return 0.0
    return float(g in r or r in g)


def rouge_l_f(gold: str, response: str) -> float:
    """ROUGE-L F-measure of the response against one gold; 0.0 if either is empty.

    >>> round(rouge_l_f("the cat sat", "the cat"), 4)   # LCS 2: P = 1, R = 2/3, F = 0.8
    0.8
    """
    return rouge_l(response, [gold])


def length_penalty(num_selected: int) -> float:
    """1 / (1 + k) for a trajectory that selected k passages: fewer passages, higher reward.

    >>> length_penalty(0), length_penalty(1), length_penalty(3)
    (1.0, 0.5, 0.25)
    """
    return 1.0 / (1.0 + num_selected)


def judge_score(text: str) -> float | None:
    """The last "Score: N" in a judge reply, or a reply that is only the number (the paper's
    rubric ends with "Score: ", so its judge answers "85"), clamped to 0..100 and divided by 100;
    None if there is none.

    >>> judge_score("Relevance 20 ... Score: 85."), judge_score("Score: 120"), judge_score(" 85.")
    (0.85, 1.0, 0.85)
    >>> judge_score("no number here"), judge_score("")
    (None, None)
    """
    matches = _SCORE.findall(text or "")
    bare = _BARE.fullmatch(text or "")
    if bare:
        matches = [bare.group(1)]
    if not matches:
        return None
    return min(max(float(matches[-1]), 0.0), 100.0) / 100.0


def parse_judge_score(text: str) -> float:
    """:func:`judge_score`, 0.0 for a reply without a score (:func:`judge_unscored` counts them).

    >>> parse_judge_score("Score: 85"), parse_judge_score("no number here")
    (0.85, 0.0)
    """
    score = judge_score(text)
    return 0.0 if score is None else score


def judge_unscored(texts: Sequence[str],
                   max_share: float | None = None) -> tuple[str | None, bool]:
    """``(summary, too_many)`` for the judge replies without a score (:func:`judge_score`):
    the summary is None when every reply has one; too many is more than ``max_share`` of them
    (None: :data:`MAX_UNSCORED`).

    >>> judge_unscored(["Score: 80", "", "Score: 10"])         # 1 of 3 > 5 %
    ("1 of 3 replies had no 'Score: N' (e.g. '')", True)
    >>> judge_unscored(["Score: 80"] * 39 + ["I cannot say."])  # 1 of 40 <= 5 %
    ("1 of 40 replies had no 'Score: N' (e.g. 'I cannot say.')", False)
    >>> judge_unscored(["85"])
    (None, False)
    """
    bad = [t for t in texts if judge_score(t) is None]
    if not bad:
        return None, False
    return (f"{len(bad)} of {len(texts)} replies had no 'Score: N' (e.g. {bad[0][:80]!r})",
            len(bad) > (MAX_UNSCORED if max_share is None else max_share) * len(texts))


def make_bertscore(lang: str = "en", model_type: str | None = None,
                   rescale_with_baseline: bool = True, device: str | None = None) -> BertScorer:
    """A batched BERTScore-F1 scorer (needs ``pip install bert-score``), clamped to [0, 1].

    The model is loaded once, here, so that a missing model fails before any scoring (and not
    once per question: ``bert_score.score`` reloads it on every call). ``model_type`` is a model
    name bert-score knows (None: its default for ``lang``, roberta-large for English) or a local
    checkpoint directory (a compute node without network): see :func:`bertscore_options`.
    Raises ImportError without the package, OSError or ValueError when the model cannot be used.
    """
    try:
        import bert_score
    except ImportError as err:
        raise ImportError("the bertscore reward needs the bert-score package: "
                          "pip install 'ragline[bertscore]' (or set its weight to 0)") from err

    options = bertscore_options(lang, model_type, rescale_with_baseline)
    scorer = bert_score.BERTScorer(device=device, **options)

    def score(candidates: list[str], references: list[str]) -> list[float]:
        if not candidates:
            return []
        _, _, f1 = scorer.score(candidates, references, verbose=False)
        return [min(max(float(x), 0.0), 1.0) for x in f1]

    return score


def bertscore_options(lang: str, model_type: str | None, rescale: bool) -> dict:
    """``bert_score.BERTScorer`` arguments for a model name or a local checkpoint directory.

    bert-score keys its layer choice and its rescaling baseline by model *name*
    (``roberta-large``: layer 17, ``rescale_baseline/en/roberta-large.tsv``); given a directory
    it would fail on the layer and silently skip the rescaling. A directory named after a model
    bert-score knows (``models/roberta-large``, a downloaded copy) gets that model's layer and
    baseline, so the reward is the paper's; any other directory uses its last layer and, with
    ``rescale`` on, is an error (there is no baseline to rescale with).
    """
    options = {"lang": lang, "model_type": model_type, "rescale_with_baseline": rescale}
    if model_type is None or not Path(model_type).is_dir():
        return options
    import bert_score
    from bert_score.utils import model2layers

    path = Path(model_type)
    options["model_type"] = str(path)
    if path.name in model2layers:
        options["num_layers"] = model2layers[path.name]
    else:
        config = json.loads((path / "config.json").read_text())
        options["num_layers"] = config.get("num_hidden_layers") or config["num_layers"]
    if rescale:
        baseline = Path(bert_score.__file__).parent / "rescale_baseline" / lang / f"{path.name}.tsv"
        if not baseline.is_file():
            raise ValueError(f"BERTScore model {path}: bert-score has no rescaling baseline for "
                             f"'{path.name}' ({lang}); name the folder after the model it holds "
                             "(e.g. roberta-large), or set bertscore_rescale: false")
        options["baseline_path"] = str(baseline)
    return options


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Validate component names and signs; returns a plain dict.

    >>> check_weights({"rouge_l": 0.5, "length_penalty": 0.5})
    {'rouge_l': 0.5, 'length_penalty': 0.5}
    """
    unknown = sorted(set(weights) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"unknown reward components {unknown}; known: {list(COMPONENTS)}")
    negative = sorted(name for name, w in weights.items() if w < 0)
    if negative:
        raise ValueError(f"reward weights must be >= 0: {negative}")
    return {name: float(w) for name, w in weights.items()}


def combine(parts: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Weighted sum of reward components; a component with weight 0 may be missing from parts.

    >>> combine({"rouge_l": 0.5, "containment_em": 1.0, "length_penalty": 0.25},
    ...         {"rouge_l": 0.2, "containment_em": 0.2, "length_penalty": 0.2, "judge": 0.0})
    0.35
    """
    total = 0.0
    for name, weight in check_weights(weights).items():
        if weight == 0:
            continue
        if name not in parts:
            raise ValueError(f"reward component {name!r} has weight {weight} but was not computed")
        total += weight * parts[name]
    return round(total, 12)


def has_preference_signal(golds: str | Sequence[str] | None, responses: Sequence[str]) -> bool:
    """False when a group cannot be scored: no usable gold, or all responses are the same string.

    >>> has_preference_signal(["Paris"], ["Paris", "Lyon"])
    True
    >>> has_preference_signal(["Paris"], ["a", "a"]), has_preference_signal([""], ["a", "b"])
    (False, False)
    """
    return bool(usable_golds(golds)) and len(set(responses)) > 1


def judge_requests(question: str, golds: str | Sequence[str] | None,
                   responses: Sequence[str]) -> list[tuple[str, str, str]]:
    """The ``(question, gold, response)`` triples :func:`score_group` asks the judge about.

    Lets a caller send every judge request of many groups as one batch and answer
    :func:`score_group` from a lookup table. Empty responses are not judged (they score 0).

    >>> judge_requests("q", ["g"], ["a", "", "b"])
    [('q', 'g', 'a'), ('q', 'g', 'b')]
    >>> judge_requests("q", ["g"], ["a", "a"])
    []
    """
    if not has_preference_signal(golds, responses):
        return []
    return [(question, g, r) for r in responses if r.strip() for g in usable_golds(golds)]


def score_group(question: str, golds: str | Sequence[str], responses: Sequence[str],
                selections: Sequence[Sequence[int]], weights: Mapping[str, float],
                judge: Judge | None = None, bertscore: BertScorer | None = None,
                rouge: str = "rouge_score") -> GroupScore:
    """Rewards for the sampled trajectories of one question (see the module docstring).

    ``selections[i]`` are the passage ids trajectory i selected (only their count matters).
    Components with weight 0 are not computed; ``judge``/``bertscore`` are required when their
    weight is > 0. ``rouge`` picks the ROUGE-L implementation: ``rouge_score`` (Google's,
    lower-cased alphanumeric tokens) or ``pltrdy`` (the PyPI ``rouge`` package the original code
    used; see :func:`stages.lib.metrics.answer.rouge_l_pltrdy`). No usable gold, or all responses identical: every reward is 0, parts are empty.

    Gold "Paris"; responses "Paris" (1 passage) and "Lyon" (3 passages); weights EM 0.5, LP 0.5:
    reward = 0.5 * 1 + 0.5 * 1/2 = 0.75 and 0.5 * 0 + 0.5 * 1/4 = 0.125.

    >>> s = score_group("capital?", ["Paris"], ["Paris", "Lyon"], [[1], [1, 2, 3]],
    ...                 {"containment_em": 0.5, "length_penalty": 0.5})
    >>> s.rewards
    [0.75, 0.125]
    >>> s.parts[1]
    {'containment_em': 0.0, 'length_penalty': 0.25}
    """
    weights = check_weights(weights)
    if len(selections) != len(responses):
        raise ValueError(f"{len(responses)} responses but {len(selections)} selections")
    active = [name for name in COMPONENTS if weights.get(name, 0.0) > 0]
    if "bertscore" in active and bertscore is None:
        raise ValueError("reward weight for 'bertscore' is > 0 but no BERTScore scorer was given "
                         "(pip install 'ragline[bertscore]', or set the weight to 0)")
    if "judge" in active and judge is None:
        raise ValueError("reward weight for 'judge' is > 0 but no judge was configured")
    if rouge not in ROUGE_IMPLEMENTATIONS:
        raise ValueError(f"rouge must be one of {ROUGE_IMPLEMENTATIONS}, got {rouge!r}")
    n = len(responses)
    if not has_preference_signal(golds, responses):
        return GroupScore([0.0] * n, [{} for _ in range(n)])
    gold_list = usable_golds(golds)

    parts: list[dict[str, float]] = [{} for _ in range(n)]
    per_gold = {
        # pltrdy: utils.compute_rouge_score's get_scores(response, gold), the order the
        # original reward used (its evaluation used the other: rouge_l_pltrdy)
        "rouge_l": rouge_l_f if rouge == "rouge_score" else
        (lambda g, r: pltrdy_rouge_l_f(r, g) if r.strip() else 0.0),
        "containment_em": containment_em,
    }
    for name, fn in per_gold.items():
        if name in active:
            for i, r in enumerate(responses):
                parts[i][name] = sum(fn(g, r) for g in gold_list) / len(gold_list)
    if "length_penalty" in active:
        for i, sel in enumerate(selections):
            parts[i]["length_penalty"] = length_penalty(len(sel))
    if "bertscore" in active:
        pairs = [(i, g) for i, r in enumerate(responses) if r.strip() for g in gold_list]
        f1 = bertscore([responses[i] for i, _ in pairs], [g for _, g in pairs])
        sums = [0.0] * n
        for (i, _), value in zip(pairs, f1):
            sums[i] += value
        for i in range(n):
            parts[i]["bertscore"] = sums[i] / len(gold_list)
    if "judge" in active:
        for i, r in enumerate(responses):
            if not r.strip():
                parts[i]["judge"] = 0.0     # nothing to grade; saves a judge call
                continue
            scores = []
            for g in gold_list:
                reply = judge(question, g, r)
                scores.append(parse_judge_score(reply) if isinstance(reply, str)
                              else min(max(float(reply), 0.0), 100.0) / 100.0)
            parts[i]["judge"] = sum(scores) / len(scores)
    rewards = [combine(p, weights) for p in parts]
    return GroupScore(rewards, parts)
