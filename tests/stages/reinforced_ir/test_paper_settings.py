"""Settings of the paper recipe (conf/reinforced_ir_llama3.yaml) checked against the seed
(FlagEmbedding research/Reinforced_IR), found by a fidelity audit:

- SciFact's ``answer_type`` is ``answer`` (get_prompts.py ANSWER_TYPE_DICT); the recipe said
  ``document``, SciFact's *passage* type, so every augmentation and DPO prompt asked the
  generator for "a short document".
- the DPO LoRA dropout is LLaMA-Factory's default 0.0 (the trainer's default was 0.05).
- the DPO learning rate decays linearly: the seed's DeepSpeed config declares WarmupDecayLR,
  which replaces the README's ``--lr_scheduler_type cosine``.
- the 0/1 quality check of the synthetic queries is sampled as the query call is (T 0.5 and the
  same max_tokens, generate_universal_query.py); ours was always greedy with 4 tokens, and
  stays so by default.
"""

from __future__ import annotations

from stages.reinforced_ir.schemas import QualityPrompt, QueryPrompt
from stages.reinforced_ir.synthesize import SynthesizeConfig, synthesize
from stages.schemas import Passages
from tests.conftest import REPO
from tests.stages.conftest import PASSAGES, fake_endpoint
from tests.stages.reinforced_ir.synthesize_helpers import PROMPTS, file_input


def _steps(recipe, overrides=()):
    from orchestrator.recipe import compose
    from orchestrator.repeat import expand_repeats

    return expand_repeats(compose(REPO / "conf" / recipe, list(overrides))[0].config)["steps"]


def test_the_paper_recipe_asks_scifact_for_an_answer_in_every_augmentation_prompt():
    paper, demo = _steps("reinforced_ir_llama3.yaml"), _steps("reinforced_ir_demo.yaml")
    prompted = [n for n in paper if n.startswith(("augment", "feedback"))]
    assert len(prompted) == 9        # augment_eval_base; augment, augment_greedy, augment_eval
    assert {paper[n]["answer_type"] for n in prompted} == {"answer"}   # and feedback per round
    assert paper["synthesize"]["passage_type"] == "document"   # the passage type stays
    assert {s["answer_type"] for n, s in demo.items() if "answer_type" in s} == {"answer"}


def test_the_paper_recipe_trains_the_generator_as_the_seed_did():
    paper = _steps("reinforced_ir_llama3.yaml")
    for name in ("generator_1", "generator_2"):
        step = paper[name]
        assert (step["lora_r"], step["lora_alpha"], step["lora_dropout"]) == (32, 64, 0.0)
        assert (step["lr_scheduler"], step["warmup_ratio"]) == ("linear", 0.0)


def test_the_paper_recipe_samples_the_quality_check_as_the_query():
    synth = _steps("reinforced_ir_llama3.yaml")["synthesize"]
    assert (synth["quality_temperature"], synth["quality_max_tokens"]) == (0.5, 64)
    cpu = _steps("reinforced_ir_llama3.yaml", ["steps.synthesize.query_max_tokens=12",
                                               "steps.synthesize.temperature=0.7"])["synthesize"]
    assert (cpu["quality_temperature"], cpu["quality_max_tokens"]) == (0.7, 12)
    demo = _steps("reinforced_ir_demo.yaml")["synthesize"]
    assert "quality_temperature" not in demo and "quality_max_tokens" not in demo


def _quality_params(model_env, monkeypatch, cfg):
    """The sampling parameters of synthesize's quality-control call."""
    art, ctx = model_env
    calls = fake_endpoint(monkeypatch, lambda conv, params: (
        "1" if "Decide whether" in conv[-1]["content"] else "Entity 3 was born in a city."))
    synthesize(art(Passages, PASSAGES), file_input(QueryPrompt, PROMPTS / "query.yaml"),
               file_input(QualityPrompt, PROMPTS / "quality.yaml"), cfg, ctx("synthesize"))
    (query_call, query_params), (check_call, check_params) = calls
    assert query_call == check_call == cfg.n_passages
    return query_params, {k: check_params.get(k) for k in ("temperature", "max_tokens", "top_p",
                                                           "seed")}


def test_the_quality_check_samples_with_its_own_settings(model_env, monkeypatch):
    _, default = _quality_params(model_env, monkeypatch, SynthesizeConfig(n_passages=4))
    assert (default["temperature"], default["max_tokens"]) == (0.0, 4)      # as before
    query, paper = _quality_params(model_env, monkeypatch, SynthesizeConfig(
        n_passages=4, temperature=0.5, top_p=0.9, seed=3, query_max_tokens=64,
        quality_temperature=0.5, quality_max_tokens=64))
    assert paper == {k: query[k] for k in paper} == {"temperature": 0.5, "max_tokens": 64,
                                                     "top_p": 0.9, "seed": 3}
