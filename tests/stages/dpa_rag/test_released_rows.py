"""The labelled preference rows DPA-RAG released (GitHub dongguanting/DPA-RAG,
``data/example_valid_dataset.jsonl`` and ``data/example_test_dataset.jsonl``: ``question``,
``reference`` (the golds), ``before`` / ``after`` = ``{answer, em, f1}``, ``category`` 1 or 2),
a dozen of their 40 rows written out by hand, reproduced by our scoring and sides:

* the released ``em`` is "a gold occurs in the answer" (``match_gold_in_pred``), the default
  ``correct_by`` of ``dpa_rag.preference``, not SQuAD's exact match;
* the released ``f1`` is SQuAD's token F1;
* ``category`` (1 positive, 2 negative) is :func:`stages.dpa_rag.categories.side`: aligned
  positive, unaligned negative, both correct / both incorrect by the sign of the F1 change.
"""

from __future__ import annotations

import pytest

from stages.dpa_rag.categories import category
from stages.dpa_rag.preference import PreferenceConfig
from stages.lib.metrics.answer import METRICS, exact_match, token_f1

# (question, golds, (before answer, em, f1), (after answer, em, f1), category)
RELEASED = [
    ("who is the head of parliament in uk", ["The Lord Fowler", "John Bercow", "Elizabeth II"],
     ("Speaker of the House of Commons", 0, 0.0), ("Queen Elizabeth II", 1, 0.8), 1),
    ("what is the most famous building in rennes",
     ["The Parlement de Bretagne", "Parlement de Bretagne"],
     ("Parliament (Palais du Parlement)", 0, 0.28571428571428575),
     ("Parlement de Bretagne", 1, 1.0), 1),
    ("who has the most number one single hits", ["The Beatles"],
     ("The Beatles", 1, 1.0), ("Unknown", 0, 0.0), 2),
    ("who are the nbc olympic ice skating commentators",   # golds abridged (9 names): the
     ["Johnny Weir", "Terry Gannon", "Tara Lipinski"],     # others are in neither answer
     ("Tara Lipinski and Johnny Weir", 1, 0.5714285714285715), ("Unknown", 0, 0.0), 2),
    # both correct, F1 up / down
    ("chief ministers of tamil nadu mentioned on wikipedia",   # golds abridged (19 names)
     ["O. Panneerselvam", "J. Jayalalithaa", "K. Palaniswami"],
     ("M. K. Stalin, Edappadi K. Palaniswami", 1, 0.5), ("Edappadi K. Palaniswami", 1, 0.8), 1),
    ("when was the first time lebron went to the finals", ["2007"],
     ("2007", 1, 1.0),
     ("The first time LeBron James went to the finals was in 2007.", 1, 0.18181818181818182), 2),
    ("who said i'll gladly pay you tuesday", ["Wimpy"],
     ("Wimpy", 1, 1.0), ("Wimpy (a character from the Popeye cartoons)", 1, 0.33333333333333337),
     2),
    ("what is on a mcchicken sandwich from mcdonalds",
     ["mayonnaise", "shredded lettuce", "breaded chicken patty", "toasted wheat bun",
      "a toasted wheat bun", "a breaded chicken patty"],
     ("Chicken patty, lettuce, mayonnaise.", 1, 0.5714285714285715),
     ("Toasted wheat bun, breaded chicken patty, shredded lettuce, mayonnaise.", 1, 0.5), 2),
    # both incorrect, F1 up / down
    ("what is the population of the tri-cities washington", ["over 300,000", "283,846"],
     ("Unknown", 0, 0.0), ("300,000", 0, 0.6666666666666666), 1),
    ("where do the signals for apoptosis come from", ["from other cells"],
     ("Various sources", 0, 0.0), ("Other cells", 0, 0.8), 1),
    ("who played dwight's brother on the office", ["Thomas Middleditch"],
     ("Thomas", 0, 0.6666666666666666), ("Thomas Middleitch", 0, 0.5), 2),
    ("when is the opening ceremonies of the olympics 2018", ["9 February 2018"],
     ("February 9", 0, 0.8), ("2020", 0, 0.0), 2),
]
ANSWERS = [(golds, said) for _, golds, before, after, _ in RELEASED for said in (before, after)]


def test_the_default_correct_by_reproduces_the_released_em_and_exact_match_does_not():
    correct = METRICS[PreferenceConfig().correct_by]
    assert [correct(answer, golds) for golds, (answer, _, _) in ANSWERS] == \
        [em for _, (_, em, _) in ANSWERS]
    squad = [exact_match(answer, golds) for golds, (answer, _, _) in ANSWERS]
    wrong = [answer for (golds, (answer, em, _)), got in zip(ANSWERS, squad) if got != em]
    assert wrong == ["Queen Elizabeth II", "Tara Lipinski and Johnny Weir",
                     "M. K. Stalin, Edappadi K. Palaniswami", "Edappadi K. Palaniswami",
                     "The first time LeBron James went to the finals was in 2007.",
                     "Wimpy (a character from the Popeye cartoons)",
                     "Chicken patty, lettuce, mayonnaise.",
                     "Toasted wheat bun, breaded chicken patty, shredded lettuce, mayonnaise."]


def test_token_f1_reproduces_the_released_f1():
    assert [token_f1(answer, golds) for golds, (answer, _, _) in ANSWERS] == \
        pytest.approx([f1 for _, (_, _, f1) in ANSWERS])


def test_the_side_of_each_document_is_the_released_category():
    from stages.dpa_rag.categories import side

    correct = METRICS[PreferenceConfig().correct_by]
    got, middle = [], 0
    for _, golds, (before, _, _), (after, _, _), _ in RELEASED:
        outcome = category(correct(before, golds) >= 1, correct(after, golds) >= 1)
        middle += outcome in ("both_correct", "both_incorrect")
        row = {"category": outcome, "before_f1": token_f1(before, golds),
               "after_f1": token_f1(after, golds)}
        got.append({1: 1, -1: 2}[side(row)])
    assert got == [label for *_, label in RELEASED]
    assert middle == 8      # both correct and both incorrect, labelled 1 and 2
