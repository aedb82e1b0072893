"""Critic rows: [Relevant] kept with p 0.7, template-breaking rows dropped, seeded dev split."""

import doctest
import random

from stages.selfrag import critic_data, tokens
from stages.selfrag.critic_data import critic_rows
from stages.selfrag.tokens import IRRELEVANT, RELEVANT


def test_doctests():
    assert doctest.testmod(critic_data).failed == 0
    assert doctest.testmod(tokens).failed == 0


def test_rules_and_seeded_split():
    rows = ([{"task": "relevance", "instruction": "i", "input": str(n), "output": RELEVANT} for n in range(3000)]
            + [{"task": "relevance", "instruction": "i", "input": str(n), "output": IRRELEVANT} for n in range(500)]
            + [{"task": "utility", "instruction": "### Response: x", "input": "", "output": "[Utility:5]"}])
    train, dev = critic_rows(rows, random.Random(1), dev_size=100)
    kept_relevant = sum(r["output"] == RELEVANT for r in train + dev)
    assert 0.67 < kept_relevant / 3000 < 0.73
    assert sum(r["output"] == IRRELEVANT for r in train + dev) == 500
    assert all("### Response:" not in r["instruction"] for r in train + dev)
    assert len(dev) == 100
    again = critic_rows(rows, random.Random(1), dev_size=100)
    assert again == (train, dev)
