"""Prompt templates and LLM wiring of this recipe. Templates are read from files a user can replace (``conf/prompts/
reinforced_ir/`` by default; a relative path is taken from the working directory first, then
from the repository)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.api import ConfigError

REPO = Path(__file__).resolve().parents[2]


def local_llm(llm, model, where: str):
    """The endpoint config with a wired checkpoint as its model (run in this process)."""
    if model is None:
        return llm
    if llm.backend == "openai":
        raise ConfigError(f"{where}.backend is 'openai' but a checkpoint is wired as the step's "
                          f"'model' input", hint=f"set {where}.backend: transformers (or vllm), "
                          "or unwire the model to ask a server")
    llm.model = str(model.path)
    return llm


def read_prompt(path: str, where: str) -> str:
    """The template text at ``path``; a one-line error naming the config key when it is missing."""
    candidates = [Path(path)] if Path(path).is_absolute() else [Path.cwd() / path, REPO / path]
    for p in candidates:
        if p.is_file():
            return p.read_text(encoding="utf-8")
    raise ConfigError(f"{where}: prompt file {path!r} not found",
                      hint="give a path to a text file (see conf/prompts/reinforced_ir/)")
