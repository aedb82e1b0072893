"""Step config validation: unions, nested sections, tuples, the value memo."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.faults.toy_config_stages import JudgeConfig, TrainConfig


@dataclass
class U:
    docs: list[int] | str = "all"
    judge: JudgeConfig | None = None
    tags: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)


def test_step_config_validation_unions_nesting_and_memo():
    from orchestrator.errors import ConfigError
    from orchestrator.stage_config import build_config, check_step_config

    with pytest.raises(ConfigError) as e:
        check_step_config(U, {"docs": [1, "b"]}, "steps.s")
    assert str(e.value) == "steps.s.docs: expected list[int] | str, got [1, 'b']"
    config, obj = check_step_config(U, {"judge": {"model": "m"}, "tags": ["a"], "weights": {"x": 1}}, "steps.s")
    assert config == {"docs": "all", "judge": {"model": "m", "temperature": 0.0, "timeout": 30.0}, "tags": ["a"],
                      "weights": {"x": 1.0}}
    assert isinstance(obj.judge, JudgeConfig) and obj.tags == ("a",)
    again = check_step_config(U, {"weights": {"x": 1}, "tags": ["a"], "judge": {"model": "m"}}, "steps.t")
    assert again[1] is obj  # validated once per distinct value, whatever the key order or step
    built = build_config(TrainConfig, check_step_config(TrainConfig, {"judge": {"model": "j"}}, "steps.x")[0])
    assert isinstance(built.judge, JudgeConfig) and built.judge.model == "j"


@dataclass
class NeedsJudge:
    judge: JudgeConfig = field(default_factory=lambda: JudgeConfig(model="???"))


def test_missing_value_inside_a_default_section_is_reported():
    from orchestrator.errors import ConfigError
    from orchestrator.stage_config import check_step_config

    with pytest.raises(ConfigError) as e:
        check_step_config(NeedsJudge, {}, "steps.reward")
    assert str(e.value).splitlines()[0] == "steps.reward.judge.model: missing value (str required)"
    assert check_step_config(NeedsJudge, {"judge": {"model": "m"}}, "steps.reward")[0]["judge"]["model"] == "m"
