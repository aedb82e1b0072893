"""A Reinforced-IR step whose filter keeps nothing says so, and why, instead of writing an empty
table that stops the next step with "input is empty" (found running the paper recipe on tiny
models: quality control rejected every query; no augmentation cleared the 0.95 margin)."""

from __future__ import annotations

import pytest

from orchestrator.api import DataError
from orchestrator.artifacts import Ref
from stages.reinforced_ir.embed import EncoderConfig
from stages.reinforced_ir.feedback_pairs import FeedbackConfig, feedback
from stages.reinforced_ir.schemas import Augmented, AugmentationPrompt, QualityPrompt, QueryPrompt
from stages.reinforced_ir.synthesize import SynthesizeConfig, synthesize
from stages.schemas import Model, Passages
from tests.conftest import REPO
from tests.stages.conftest import PASSAGES, fake_endpoint


def _prompt(cls, name):
    path = REPO / "conf" / "prompts" / "reinforced_ir" / f"{name}.yaml"
    return cls(Ref("file", cls.type_name(), "hash", [str(path)]))


def test_quality_control_rejecting_every_query_is_an_error(model_env, monkeypatch):
    art, ctx = model_env
    fake_endpoint(monkeypatch, lambda conv, params: "0" if params["max_tokens"] == 4 else "A query")
    with pytest.raises(DataError, match="quality control rejected all 5"):
        synthesize(art(Passages, PASSAGES[:5]), _prompt(QueryPrompt, "query"),
                   _prompt(QualityPrompt, "quality"), SynthesizeConfig(n_passages=5),
                   ctx("synthesize"))


def test_no_dpo_pair_is_an_error_that_says_which_rule_dropped_them(model_env, models):
    art, ctx = model_env
    rows = [{"id": f"q{i}", "dataset": "synthetic", "question": f"Where was Entity {i} born?",
             "answers": [], "gold": [f"p{i}"], "augmentations": ["same", "same"]}
            for i in range(3)]
    cfg = FeedbackConfig(encoder=EncoderConfig(pooling="mean", normalize=True),
                         margin=1.0, require_gain=False)
    with pytest.raises(DataError, match="none of the 3 queries gives a DPO pair") as err:
        feedback(art(Augmented, rows), art(Passages, PASSAGES), art(Model, models["enc"]),
                 _prompt(AugmentationPrompt, "augment"), cfg, ctx("feedback_1"))
    assert "chosen and rejected are the same text" in str(err.value)
    assert "margin and require_gain" in err.value.hint
