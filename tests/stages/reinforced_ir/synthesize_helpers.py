"""What the synthesize tests share: prompt files as inputs, and the prompts a run sends."""

from __future__ import annotations

from pathlib import Path

from orchestrator.artifacts import Ref
from stages.reinforced_ir.schemas import QualityPrompt, QueryExamples, QueryPrompt
from stages.reinforced_ir.synthesize import synthesize
from stages.schemas import Passages
from tests.conftest import REPO
from tests.stages.conftest import PASSAGES, fake_endpoint

PROMPTS = REPO / "conf" / "prompts" / "reinforced_ir"


def file_input(cls, path: Path):
    """The file at ``path`` as a stage input of type ``cls`` (a prompt or examples file)."""
    return cls(Ref("file", cls.type_name(), "hash", [str(path)]))


def sent_prompts(model_env, monkeypatch, cfg, query_prompt=PROMPTS / "query.yaml", examples=None):
    """The query prompts synthesize sends (quality control keeps every query)."""
    art, ctx = model_env
    calls = []

    def answer(conversation, params):
        if params["max_tokens"] == 4:
            return "1"
        calls.append(conversation[-1]["content"])
        return "Entity 3 was born in a city."

    fake_endpoint(monkeypatch, answer)
    synthesize(art(Passages, PASSAGES), file_input(QueryPrompt, query_prompt),
               file_input(QualityPrompt, PROMPTS / "quality.yaml"), cfg, ctx("synthesize"),
               examples=None if examples is None else file_input(QueryExamples, examples))
    return calls
