"""A step that wires a checkpoint as its `model` input asks that checkpoint, in this process:
the endpoint config takes its path as the model (the recipes leave `model` empty)."""

from __future__ import annotations

from orchestrator.api import ConfigError


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
