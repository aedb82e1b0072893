"""Stage ``reinforced_ir.distill``: the generator ranks each training group (listwise teacher).

Seed step: ``generate_retriever_distill_data.py`` (SEEDS §5.3 step 5): the positive and its
negatives (16 passages, each cut to 512 tokens of the LLM's tokenizer) go into a RankGPT-style
prompt; the permutation is parsed tolerantly and the group rewritten in the teacher's order with
scores 1, 1, 1/2, 1/3, … (rules in :mod:`stages.reinforced_ir.rankgpt`). Passages are cut by
characters here (``max_passage_chars``), which needs no tokenizer for an HTTP endpoint.

``repetition_penalty``: the original ranks with its instruct generator's ``generate``
(``LLMInstructAgent``, README ``--model_type llm_instruct``), whose vLLM ``repetition_penalty``
defaults to 1.1 and is not overridden by the distill step, so the teacher's greedy ranking is
generated under that penalty. Unset here (None) no penalty is asked, and the requests, their
cached answers and the output are those from before the setting existed (version 1). With the
vLLM and transformers backends and a vLLM-style server it is applied; api.openai.com refuses it
(``stages.lib.endpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge, Gt

from orchestrator.api import StageContext, added, stage
from stages.lib.endpoint import EndpointConfig
from stages.lib.endpoint.request import check_repetition_penalty
from stages.reinforced_ir.schemas import DistillPrompt, RetrieverData
from stages.schemas import Model


def _teacher_llm() -> EndpointConfig:
    return EndpointConfig(backend="transformers", model="")   # the wired (merged) generator


@dataclass
class DistillConfig:
    llm: EndpointConfig = field(default_factory=_teacher_llm)
    max_tokens: Annotated[int, Ge(1)] = 300  # paper: 300, greedy
    group_size: Annotated[int, Ge(1)] = 16  # paper: positive + 15 negatives
    max_passage_chars: Annotated[int, Ge(1)] = 2000  # about 512 tokens
    # vLLM's penalty on tokens already in the prompt or reply (paper: 1.1, its instruct
    # generator's default); None/1.0: none
    repetition_penalty: Annotated[float, Gt(0)] | None = added(None)

    def __post_init__(self):
        check_repetition_penalty(self.repetition_penalty)   # NaN too (plan time checks > 0)


@stage("reinforced_ir.distill", version=2, shard_by="groups",  # 2: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def distill(groups: RetrieverData, prompt: DistillPrompt, cfg: DistillConfig, ctx: StageContext,
            model: Model | None = None) -> RetrieverData:
    """Each group reordered by the teacher, with teacher scores."""
    from stages.lib.endpoint import open_client
    from stages.lib.prompts import messages
    from stages.lib.endpoint.checkpoint import local_llm
    from stages.reinforced_ir.rankgpt import parse_permutation, teacher_order

    template = prompt.load()
    rows = groups.rows()
    if not rows:
        return []
    llm = local_llm(cfg.llm, model, "distill.llm")
    lists = [(list(r["pos"]) + list(r["neg"]))[:cfg.group_size] for r in rows]
    asks = [messages(template, num=len(ps), query=r["query"],
                     passages="\n".join(f"[{i}] {p[:cfg.max_passage_chars]}" for i, p in enumerate(ps)))
            for r, ps in zip(rows, lists)]
    with open_client(llm, ctx.scratch / "llm", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced, where="distill.llm") as client:
        replies = client.chat(asks, temperature=0.0, max_tokens=cfg.max_tokens,
                              repetition_penalty=cfg.repetition_penalty,
                              progress=lambda it: ctx.progress(it, desc="rank groups"))
    promoted = 0
    for row, ps, reply in zip(rows, lists, replies):
        order = parse_permutation(reply.text, len(ps))
        promoted += order[0] != 0
        group = teacher_order(ps, order)
        row.update(pos=group.pos, neg=group.neg, pos_scores=group.pos_scores,
                   neg_scores=group.neg_scores)
    ctx.log.info("distill: %d groups ranked; the teacher put a mined negative first in %d",
                 len(rows), promoted)
    return rows
