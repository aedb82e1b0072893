"""Stage ``dynamicrag.sample``: DynamicRAG reranker trajectories, each answered by the generator.

Seed step: ``sampling_dpo_trajectories.py`` (SEEDS 1.3 step 9): the SFT model, as reranker, reads
the question and the first 40 passages and samples 8 selections at temperature 0.4 (100 tokens);
each selection's passages go to the same model, as generator, for one greedy answer (200 tokens).
The trajectories are then scored (stage ``reward``) and paired for DPO (stage ``pairs``).

Fixes relative to the seed: an out-of-range or repeated id is dropped from the selection instead
of skipping the whole question (IndexError); the generator sees the selected passages in the one
passage format used everywhere (the seed switched from "Topic:" to "Title: {title}." with the
original ids here); no breakpoint before each write; sampling is seeded, by each question's id
(:func:`~stages.lib.models.generation.id_seed`), so a question gets the same trajectories
whatever the shard count.

Each output row keeps ``ctxs[:num_docs]`` (the passages the reranker saw, so later prompts built
from the row match the sampled ones) and ``trajectories``: ``ids`` (1-based positions into
``ctxs``), ``selection`` (the raw reranker output) and ``response`` (the generator's answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import StageContext, nonsemantic, stage
from stages.dynamicrag.prompts import parse_selection, reranker_messages
from stages.dynamicrag.schemas import RerankerPrompt, Trajectories
from stages.lib.prompts import generator_messages
from stages.schemas import GeneratorPrompt, Model, Reranked


@dataclass
class SampleConfig:
    n: Annotated[int, Ge(1)] = 8         # trajectories per question (paper: 8)
    temperature: Annotated[float, Ge(0)] = 0.4  # reranker sampling temperature (paper: 0.4)
    max_new_tokens: Annotated[int, Ge(1)] = 100  # reranker output tokens (paper: 100)
    num_docs: Annotated[int, Ge(1)] = 40  # passages shown to the reranker (paper: docs[:40])
    answer_max_new_tokens: Annotated[int, Ge(1)] = 200  # generator tokens, greedy (paper: 200)
    answer_temperature: Annotated[float, Ge(0)] = 0.0  # 0: greedy (paper); > 0 samples answers
    backend: Literal["auto", "transformers", "vllm"] = "auto"  # paper: vLLM
    seed: Annotated[int, Ge(0)] = 0  # sampling seed (with each question's id: id_seed)
    # generated rows per forward (transformers backend)
    batch_size: Annotated[int, Ge(1)] = nonsemantic(16)


@stage("dynamicrag.sample", version=5, shard_by="items",  # 5: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def sample(items: Reranked, model: Model, reranker_prompt: RerankerPrompt, generator_prompt: GeneratorPrompt,
           cfg: SampleConfig, ctx: StageContext) -> Trajectories:
    """``n`` sampled reranker selections per question, each with one greedy generator answer."""
    from stages.lib.models.generation import id_seed, load_generator

    reranker, generator = reranker_prompt.load(), generator_prompt.load()
    if cfg.temperature <= 0 and cfg.n > 1:
        ctx.log.warning("sample: temperature %s is greedy: the %d trajectories per question will "
                        "be identical and carry no preference", cfg.temperature, cfg.n)
    rows = items.rows()
    if not rows:
        return []
    for row in rows:
        row["ctxs"] = list(row.get("ctxs") or [])[:cfg.num_docs]
    gen = load_generator(str(model.path), backend=cfg.backend, device=ctx.device)

    rerank_convs = [reranker_messages(reranker, r["question"], r["ctxs"]) for r in rows]
    # seeded by the question's id, not its position in this shard: the same trajectories on
    # 1 GPU or 8
    selections = gen.chat(rerank_convs, max_new_tokens=cfg.max_new_tokens,
                          temperature=cfg.temperature, n=cfg.n,
                          seeds=[id_seed(cfg.seed, r["id"]) for r in rows],
                          batch_size=cfg.batch_size,
                          progress=lambda it: ctx.progress(it, desc="sample selections"))

    ids = [[parse_selection(text, len(r["ctxs"])) for text in texts]
           for r, texts in zip(rows, selections)]
    # one greedy answer per distinct (question, selection): equal prompts give equal answers
    slot: dict[tuple, int] = {}
    answer_convs, answer_seeds = [], []
    for q, (r, sels) in enumerate(zip(rows, ids)):
        for sel in sels:
            if (q, tuple(sel)) not in slot:
                slot[q, tuple(sel)] = len(answer_convs)
                answer_convs.append(generator_messages(
                    generator, r["question"], [r["ctxs"][i - 1] for i in sel],
                    r.get("dataset") or "", r.get("choices") or []))
                # sampled answers (answer_temperature > 0): seeded by the question and the
                # selection, apart from the selections' seeds (cfg.seed + 1)
                answer_seeds.append(id_seed(cfg.seed + 1, f"{r['id']}:{list(sel)}"))
    answers = gen.chat(answer_convs, max_new_tokens=cfg.answer_max_new_tokens,
                       temperature=cfg.answer_temperature, seeds=answer_seeds,
                       batch_size=cfg.batch_size,
                       progress=lambda it: ctx.progress(it, desc="answer trajectories"))

    for q, (row, texts, sels) in enumerate(zip(rows, selections, ids)):
        row["trajectories"] = [{"ids": sel, "selection": text,
                                "response": answers[slot[q, tuple(sel)]][0]}
                               for text, sel in zip(texts, sels)]
    distinct = len(answer_convs) / len(rows)
    ctx.log.info("%d questions x %d trajectories; %.2f distinct selections per question, "
                 "%.1f passages selected on average", len(rows), cfg.n, distinct,
                 sum(len(s) for sels in ids for s in sels) / max(1, len(rows) * cfg.n))
    return rows
