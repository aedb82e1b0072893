"""A prompt file that never uses a placeholder its stage cannot do without (``PromptFile.needs``)
is refused by ``rag plan`` before any step runs, and when a stage loads it: a generator prompt
without ``{passages}`` would train and evaluate a model that never sees the passages. Every
prompt file the shipped recipes wire passes the types that read it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from orchestrator.api import ConfigError
from orchestrator.artifacts import Ref
from stages.lib.prompts import PromptFile
from stages.schemas import GeneratorPrompt
from tests.conftest import REPO, rag

NO_PASSAGES = "user: |-\n  {style}\n  Query: {question}\n"
GENERATOR_HINT = ("add {passages} to 'user' where the passages go; for a no-retrieval "
                  "(closed-book) baseline keep {passages} and give infer_topk k: 0: {passages} is "
                  "then the file's no_passages text (empty without that key)")


def refusal(cls: type[PromptFile], path: Path) -> ConfigError:
    """The one-line error ``cls`` gives for the file, from ``check_source`` and ``load`` alike."""
    with pytest.raises(ConfigError) as planned:
        cls.check_source(path)
    with pytest.raises(ConfigError) as loaded:
        cls(Ref("file", cls.type_name(), "h", [str(path)])).load()
    assert (planned.value.message, planned.value.hint) == (loaded.value.message, loaded.value.hint)
    assert "\n" not in planned.value.message + (planned.value.hint or "")
    return planned.value


def test_a_generator_prompt_without_passages_is_refused_naming_the_file_and_placeholder(tmp_path):
    path = tmp_path / "gen.yaml"
    path.write_text(NO_PASSAGES)
    err = refusal(GeneratorPrompt, path)
    assert err.message == (f"prompt file {path}:1: 'user' does not use {{passages}}, so the "
                           "generator never sees the retrieved passages (training and evaluation "
                           "would measure a closed-book model)")
    assert err.hint == GENERATOR_HINT


def test_a_generator_prompt_without_the_question_is_refused(tmp_path):
    path = tmp_path / "gen.yaml"
    path.write_text("user: 'Answer from these: {passages}'\n")
    err = refusal(GeneratorPrompt, path)
    assert err.message == (f"prompt file {path}:1: 'user' does not use {{question}}, so the "
                           "generator never sees the question it answers")
    assert err.hint == "add {question} to 'user'"


def test_a_passages_key_that_drops_the_passages_is_refused(tmp_path):
    path = tmp_path / "gen.yaml"
    path.write_text("user: 'Q: {question}\\n{passages}'\npassages: 'Retrieved Content:'\n")
    err = refusal(GeneratorPrompt, path)
    assert err.message.startswith(f"prompt file {path}:2: 'passages' does not use {{passages}} "
                                  "(the passages joined, put into 'user' as {passages}), so the "
                                  "generator never sees the retrieved passages")
    assert err.hint.startswith('write e.g. passages: "Retrieved Content:\\n{passages}"')


def test_a_placeholder_that_is_not_needed_may_be_left_out(tmp_path):
    path = tmp_path / "gen.yaml"      # no {style}: the answer style is optional
    path.write_text("user: 'Q: {question}\\n\\n{passages}'\nno_passages: ''\n")
    GeneratorPrompt.check_source(path)
    assert GeneratorPrompt(Ref("file", "", "h", [str(path)])).load().fills == GeneratorPrompt.fills


def test_needs_is_opt_in_and_checked_against_fills():
    class Plain(PromptFile):
        fills = ("question",)

    assert dict(Plain.needs) == {} and dict(Plain.without) == {}
    with pytest.raises(TypeError, match=r"Typo: needs/without name \{pasages\}, which is not in "
                                        r"its fills \('question', 'passages'\)"):
        class Typo(PromptFile):
            fills = ("question", "passages")
            needs = {"pasages": "the model never sees them"}


def test_each_type_names_what_is_lost_and_other_types_refuse_theirs(tmp_path):
    from stages.dynamicrag.schemas import JudgePrompt, RerankerPrompt
    from stages.schemas import RelevancePrompt

    cases = [(RerankerPrompt, "user: 'Query: {question}'\n", "passages",
              "the reranker never sees the candidate passages it selects from"),
             (RelevancePrompt, "user: 'Passage: {passage} - relevant? yes or no'\n", "question",
              "the LLM never sees the question it judges the passage for"),
             (JudgePrompt, "user: 'Q: {question}\\nReference: {gold}\\nScore:'\n", "response",
              "the judge never sees the response it grades")]
    for cls, text, name, lost in cases:
        path = tmp_path / f"{cls.__name__}.yaml"
        path.write_text(text)
        err = refusal(cls, path)
        assert err.message == f"prompt file {path}:1: 'user' does not use {{{name}}}, so {lost}"
        assert err.hint.startswith(f"add {{{name}}} to 'user'")
    assert "weights.judge: 0" in refusal(JudgePrompt, tmp_path / "JudgePrompt.yaml").hint


TINY = """\
sources:
  prompt: %s
steps:
  load: {stage: load_data, num_entities: 4, num_train: 0, num_eval: 2}
  encoder: {stage: prepare_model, package: minilm}
  generator: {stage: prepare_model, package: smollm2}
  index: {stage: index, inputs: {corpus: load.corpus, encoder: encoder}}
  retrieve: {stage: retrieve, inputs: {questions: load.eval, index: index, encoder: encoder,
                                       corpus: load.corpus}}
  top3: {stage: infer_topk, k: 3, inputs: {questions: retrieve, prompt: prompt, model: generator}}
"""


def test_rag_plan_refuses_a_generator_prompt_without_passages(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "runs" / "cache"))
    prompt, recipe = tmp_path / "prompt.yaml", tmp_path / "recipe.yaml"
    prompt.write_text(NO_PASSAGES)
    recipe.write_text(TINY % prompt)
    runs = tmp_path / "runs"
    capsys.readouterr()
    assert rag("plan", str(recipe), "--json", runs=runs) == 0
    assert json.loads(capsys.readouterr().out)["members"][0]["problems"] == [
        f"steps.top3.inputs.prompt (source 'prompt'): prompt file {prompt}:1: 'user' does not use "
        "{passages}, so the generator never sees the retrieved passages (training and evaluation "
        f"would measure a closed-book model); {GENERATOR_HINT}"]
    assert rag("plan", str(recipe), "--check", runs=runs) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"problem: steps.top3.inputs.prompt (source 'prompt'): prompt file {prompt}:1: 'user' " \
           "does not use {passages}" in out
    assert rag("run", str(recipe), runs=runs) == 2      # refused before any step runs
    err = " ".join(capsys.readouterr().err.split())
    assert f"prompt file {prompt}:1: 'user' does not use {{passages}}" in err
    assert not (runs / "cache" / "entries").exists() or not any(
        (runs / "cache" / "entries").rglob("*.json"))

    prompt.write_text(NO_PASSAGES + "\n  {passages}\n")   # fixed: the plan is clean
    capsys.readouterr()
    assert rag("plan", str(recipe), "--check", runs=runs) == 0


RECIPES = sorted(p.name for p in (REPO / "conf").glob("*.yaml"))


def _wired_prompts(recipe: str) -> set[tuple[str, str]]:
    """(prompt file, checking type) of every source a step of the shipped recipe reads."""
    from orchestrator.dag import build_dags
    from orchestrator.recipe import compose

    path = REPO / "conf" / recipe
    out = set()
    for dag in build_dags(path, compose(path, [])):
        for step in dag.steps.values():
            for name, wire in step.inputs.items():
                check = step.stage.inputs[name].get("check")
                source = dag.sources.get(wire.node) if wire.output is None else None
                if check and source and "conf/prompts/" in source:
                    out.add((source, check))
    return out


def test_every_prompt_the_shipped_recipes_wire_passes_the_types_that_read_it(monkeypatch):
    monkeypatch.chdir(REPO)
    pairs = set().union(*(_wired_prompts(r) for r in RECIPES))
    for source, check in sorted(pairs):
        module, _, name = check.partition(":")
        cls = getattr(importlib.import_module(module), name)
        cls.check_source(REPO / source)         # raises on a refused file
    from stages.schemas import RelevancePrompt

    relevance = REPO / "conf" / "prompts" / "common" / "relevance.yaml"
    RelevancePrompt.check_source(relevance)     # for rerank method: causal_lm; no recipe wires it
    checked = {Path(s).resolve() for s, _ in pairs} | {relevance}
    shipped = set((REPO / "conf" / "prompts").rglob("*.yaml"))
    assert shipped == checked   # wrappers.yaml too (rag_instruct's WrapperFile)
    assert {c.rpartition(":")[2] for _, c in pairs} >= {
        "GeneratorPrompt", "RerankerPrompt", "JudgePrompt", "PrealignPrompt", "QueryAugmentPrompt",
        "SynthesisPrompt", "QueryPrompt", "QualityPrompt", "AugmentationPrompt", "DistillPrompt",
        "RetrievalPrompt", "UtilityPrompt", "IsRelPrompt", "SupportPrompt", "MultiRetrievalPrompt"}


@pytest.mark.parametrize("recipe", RECIPES)
def test_shipped_recipes_plan_without_a_prompt_problem(recipe, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "runs" / "cache"))
    capsys.readouterr()
    assert rag("plan", f"conf/{recipe}", "--json", runs=tmp_path / "runs") == 0
    (member,) = json.loads(capsys.readouterr().out)["members"]
    assert not [p for p in member["problems"] if "prompt file" in p]
