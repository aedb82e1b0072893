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


@dataclass
class Llm:
    backend: str = "local"
    model: str = "tiny"
    temperature: float = 0.0


@dataclass
class Critic:
    llm: Llm = field(default_factory=lambda: Llm(model="critic-7b"))
    rounds: int = 1


@dataclass
class Labeler:
    """Defaults set by the factories differ from the nested classes' own defaults."""
    llm: Llm = field(default_factory=lambda: Llm(model="labeler-13b", temperature=0.7))
    critic: Critic = field(default_factory=lambda: Critic(llm=Llm(model="outer-critic"), rounds=3))
    extra: Critic | None = None


def test_partial_nested_section_keeps_the_default_factory_values():
    from orchestrator.errors import ConfigError
    from orchestrator.stage_config import check_step_config

    config = check_step_config(Labeler, {"llm": {"backend": "openai"}}, "steps.x")[0]
    assert config["llm"] == {"backend": "openai", "model": "labeler-13b", "temperature": 0.7}
    # two levels down: the outer default instance's section, not Critic's own factory
    config = check_step_config(Labeler, {"critic": {"llm": {"backend": "openai"}}}, "steps.x")[0]
    assert config["critic"] == {"llm": {"backend": "openai", "model": "outer-critic", "temperature": 0.0},
                                "rounds": 3}
    # a section whose default is None starts from its class's defaults, factories included
    config = check_step_config(Labeler, {"extra": {"llm": {"temperature": 0.2}}}, "steps.x")[0]
    assert config["extra"] == {"llm": {"backend": "local", "model": "critic-7b", "temperature": 0.2},
                               "rounds": 1}
    assert config["llm"]["model"] == "labeler-13b"  # untouched sections keep their factory values
    # every value is still checked, at its key
    with pytest.raises(ConfigError) as e:
        check_step_config(Labeler, {"critic": {"llm": {"temperature": "hot"}}}, "steps.x")
    assert str(e.value) == "steps.x.critic.llm.temperature: expected a number, got 'hot'"
    with pytest.raises(ConfigError) as e:
        check_step_config(Labeler, {"critic": {"llm": {"bakend": "openai"}}}, "steps.x")
    assert str(e.value).startswith("steps.x.critic.llm.bakend: unknown key")


@dataclass
class NeedsModel:
    judge: JudgeConfig = field(default_factory=lambda: JudgeConfig(model="???"))


def test_partial_section_over_a_missing_default_still_asks_for_it():
    from orchestrator.errors import ConfigError
    from orchestrator.stage_config import check_step_config

    with pytest.raises(ConfigError) as e:
        check_step_config(NeedsModel, {"judge": {"temperature": 0.5}}, "steps.reward")
    assert str(e.value).splitlines()[0] == "steps.reward.judge.model: missing value (str required)"


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_infinite_and_nan_numbers_are_refused_with_their_key(value):
    """pydantic lets ``inf`` through a ``> 0`` range; no setting means "unbounded" by it."""
    from orchestrator.errors import ConfigError
    from orchestrator.stage_config import check_step_config

    with pytest.raises(ConfigError) as e:
        check_step_config(U, {"weights": {"x": 1.0, "y": value}}, "steps.s")
    assert e.value.message == f"steps.s.weights.y: expected a finite number, got {value}"
    assert e.value.key == "steps.s.weights.y"


def test_an_unknown_key_hint_lists_the_config_and_the_keys_every_step_takes():
    from orchestrator.errors import ConfigError
    from orchestrator.stage_config import RESERVED, check_step_config

    with pytest.raises(ConfigError) as e:
        check_step_config(U, {"shard": 2}, "steps.s")
    assert e.value.message == "steps.s.shard: unknown key (did you mean 'shards'?)"
    assert e.value.hint == ("U has: docs, judge, tags, weights; every step also takes: "
                            + ", ".join(RESERVED))


@dataclass
class Schedule:
    max_steps: int = -1
    epochs: int = 1

    def __post_init__(self):
        from orchestrator.errors import ConfigError

        if self.max_steps == 0:
            raise ConfigError("max_steps must be -1 or > 0, got 0")
        if self.max_steps == -1 and self.epochs < 1:
            raise ValueError(f"epochs must be > 0 when max_steps is -1, got {self.epochs}")


def test_a_post_init_error_is_keyed_at_the_one_field_it_names():
    """So that the recipe line of that field, or the override that set it, is blamed; a message
    naming several fields (or none) stays at the step."""
    from orchestrator.errors import ConfigError
    from orchestrator.stage_config import check_step_config

    with pytest.raises(ConfigError) as e:
        check_step_config(Schedule, {"max_steps": 0}, "steps.s")
    assert (e.value.key, e.value.message) == (
        "steps.s.max_steps", "steps.s: max_steps must be -1 or > 0, got 0")
    with pytest.raises(ConfigError) as e:
        check_step_config(Schedule, {"epochs": 0}, "steps.s")
    assert e.value.key == "steps.s"


POST_INIT_RECIPE = """\
ragline:
  imports: [tests.toy.stages, tests.faults.toy_config_stages]
steps:
  load: {stage: toy_gen, n: 4}
  train:
    stage: toy_train
    inputs: {numbers: load}
    WEIGHTS
"""


def test_a_post_init_error_blames_the_override_that_set_a_field_it_names(toy, capsys):
    """toy_train's __post_init__: ``weights.judge is set but there is no judge section``."""
    from tests.conftest import rag

    recipe = toy / "conf" / "post_init.yaml"
    recipe.write_text(POST_INIT_RECIPE.replace("WEIGHTS", "lr: 0.1"))
    capsys.readouterr()
    assert rag("plan", str(recipe), "steps.train.lr=0.2", "+steps.train.weights={judge: 1.0}",
               runs=toy / "runs") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert ("error: override '+steps.train.weights={judge: 1.0}': steps.train: weights.judge is "
            "set but there is no judge section") in err
    recipe.write_text(POST_INIT_RECIPE.replace("WEIGHTS", "weights: {judge: 1.0}"))
    assert rag("plan", str(recipe), "steps.train.lr=0.2", runs=toy / "runs") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"error: {recipe}:5: steps.train: weights.judge is set" in err   # the step's line
