"""augment's ``repetition_penalty``: the original samples the generator's augmentations with
vLLM's repetition_penalty 1.1; before, the setting did not exist. Unset, the requests are those
from before (no penalty field: the endpoint's cache keys, tests/stages/lib/endpoint/
test_repetition_penalty.py); set, every request carries it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from orchestrator.api import ConfigError
from orchestrator.artifacts import Ref
from stages.reinforced_ir.augment import AugmentConfig, augment
from stages.reinforced_ir.schemas import AugmentationPrompt
from stages.schemas import Model, Questions
from tests.stages.conftest import fake_endpoint

PROMPT = Path(__file__).resolve().parents[3] / "conf" / "prompts" / "reinforced_ir" / "augment.yaml"
ROWS = [{"id": f"q{i}", "dataset": "scifact", "question": f"claim {i}", "answers": [],
         "gold": [f"d{i}"]} for i in range(3)]


def test_the_penalty_reaches_every_request_and_is_not_sent_unset(model_env, monkeypatch):
    art, ctx = model_env
    calls = fake_endpoint(monkeypatch, lambda conversation, params: "an answer")
    prompt = AugmentationPrompt(Ref("file", AugmentationPrompt.type_name(), "h", [str(PROMPT)]))
    for cfg in (AugmentConfig(n=2, repetition_penalty=1.1), AugmentConfig(n=2)):
        out = augment(art(Questions, ROWS), prompt, cfg, ctx("augment_1"),
                      model=art(Model, "unused"))
        assert [len(r["augmentations"]) for r in out] == [1, 1, 1]   # the fake answers once
    assert [(n, params["repetition_penalty"]) for n, params in calls] == [(3, 1.1), (3, None)]


@pytest.mark.parametrize("bad", [0.0, -1.1, math.nan])
def test_a_penalty_that_is_not_above_0_is_refused_naming_the_key(bad):
    with pytest.raises(ConfigError) as err:
        AugmentConfig(repetition_penalty=bad)
    assert err.value.message == (f"repetition_penalty: expected a number > 0 (1.0 = no "
                                 f"penalty), got {bad!r}")
    assert "1.1" in err.value.hint
