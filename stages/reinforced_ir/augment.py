"""Stage ``reinforced_ir.augment``: the generator's augmentations of each query.

Seed steps: ``generate_generator_data.py`` (sampled: ``dpo_num`` 5 per query at T 0.9, top-p 0.9,
300 tokens, for the retriever-feedback reward) and ``generate_retriever_data.py`` (greedy: one per
query, T 0, for retriever training and for inference). One stage does both: ``n`` and
``temperature`` say which. The prompt asks for a brief {answer_type} of the query in the context
of the retrieval task; the augmentation is stored as generated, and the
topic prefix is added where it is embedded (``stages.reinforced_ir.fusion``). The prompt is a
file (``conf/prompts/reinforced_ir/augment.yaml``) wired as an input, so it is in the cache key.

``repetition_penalty``: the original samples the generator with vLLM's ``repetition_penalty``
1.1 (its ``LLMInstructAgent`` default); unset here (None) no penalty is asked, and the requests,
their cached answers and the output are those from before the setting existed (version 1).
With the vLLM and transformers backends and a vLLM-style server it is applied; api.openai.com
refuses it (``stages.lib.endpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge, Gt, Le

from orchestrator.api import StageContext, added, stage
from stages.lib.endpoint import EndpointConfig
from stages.lib.endpoint.request import check_repetition_penalty
from stages.reinforced_ir.schemas import Augmented, AugmentationPrompt
from stages.schemas import Model, Questions


def _gen_llm() -> EndpointConfig:
    return EndpointConfig(backend="transformers", model="")   # the wired checkpoint (paper: vLLM)


@dataclass
class AugmentConfig:
    llm: EndpointConfig = field(default_factory=_gen_llm)
    n: Annotated[int, Ge(1)] = 5            # paper: dpo_num 5 (1 with temperature 0 for greedy)
    temperature: Annotated[float, Ge(0)] = 0.9  # paper: 0.9 (greedy steps: 0)
    top_p: Annotated[float, Gt(0), Le(1)] = 0.9  # paper: 0.9
    max_tokens: Annotated[int, Ge(1)] = 300  # paper: 300
    task: str = "Given a question, retrieve passages that answer the question."
    answer_type: str = "answer"           # per dataset in the paper: answer, document, ...
    seed: Annotated[int, Ge(0)] = 0
    # only queries with a gold passage id: the evaluation scores no other, and a BEIR folder's
    # queries.jsonl holds every split (SciFact: 1,109 queries, 300 judged in qrels/test.tsv)
    judged_only: bool = added(False)
    # vLLM's penalty on tokens already in the prompt or reply (paper: 1.1); None/1.0: none
    repetition_penalty: Annotated[float, Gt(0)] | None = added(None)

    def __post_init__(self):
        check_repetition_penalty(self.repetition_penalty)   # NaN too (plan time checks > 0)


@stage("reinforced_ir.augment", version=2, shard_by="queries",  # 2: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def augment(queries: Questions, prompt: AugmentationPrompt, cfg: AugmentConfig, ctx: StageContext,
            model: Model | None = None) -> Augmented:
    """``n`` augmentations per query (the same seed gives the same samples)."""
    from stages.lib.endpoint import open_client
    from stages.lib.prompts import messages
    from stages.lib.endpoint.checkpoint import local_llm

    template = prompt.load()
    rows = queries.rows()
    if cfg.judged_only:
        judged = [r for r in rows if r.get("gold")]
        if len(judged) < len(rows):
            ctx.log.info("augment: %d of %d queries have no gold passage id (not judged in the "
                         "qrels) and are left out (judged_only)", len(rows) - len(judged),
                         len(rows))
        rows = judged
    if not rows:
        return []
    llm = local_llm(cfg.llm, model, "augment.llm")
    asks = [messages(template, task=cfg.task, answer_type=cfg.answer_type, query=r["question"])
            for r in rows]
    with open_client(llm, ctx.scratch / "llm", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced, where="augment.llm") as client:
        replies = client.chat(asks, n=cfg.n, seed=cfg.seed, temperature=cfg.temperature,
                              top_p=cfg.top_p, max_tokens=cfg.max_tokens,
                              repetition_penalty=cfg.repetition_penalty,
                              progress=lambda it: ctx.progress(it, desc="augment"))
    for row, reply in zip(rows, replies):
        row["augmentations"] = [t.strip() for t in reply.texts]
    ctx.log.info("augment: %d queries x %d augmentations (T %.2f)", len(rows), cfg.n,
                 cfg.temperature)
    return rows
