"""Stage ``dynamicrag.pairs``: DPO preference pairs from scored DynamicRAG trajectories.

Seed step: ``constrcut_dpo.py`` (SEEDS 1.3 step 11). Per question the best trajectory (first
argmax reward) is preferred over the worst (first argmin); questions with fewer than two
trajectories or all-equal rewards are skipped. The first ``generator_cap`` qualifying questions
give generator pairs (gold answer over the worst non-gold response, with the best trajectory's
passages as context), the rest give reranker pairs (best selection over worst selection, with
the first ``num_docs`` passages). See :mod:`stages.dynamicrag.pairs_logic`.

Output is TRL's conversational preference format (``prompt`` / ``chosen`` / ``rejected`` message
lists) instead of LLaMA-Factory Alpaca JSON; ``task`` says which role a pair trains.

Fixes relative to the seeds: the rejected answer comes from the same question (the seed reused a
stale one from an earlier question, or crashed); a question whose responses all equal a gold
gives a reranker pair instead; one passage format (``Topic:``) for training and inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import StageContext, stage
from stages.dynamicrag.pairs_logic import preference_pairs
from stages.dynamicrag.prompts import RolePrompts
from stages.dynamicrag.schemas import RerankerPrompt, Scored
from stages.schemas import GeneratorPrompt, Preferences


@dataclass
class PairsConfig:
    generator_cap: Annotated[int, Ge(0)] = 10000  # first N qualifying questions -> generator pairs
    reranker_cap: Annotated[int, Ge(0)] | None = None  # at most N reranker pairs (None: the rest)
    num_docs: Annotated[int, Ge(1)] = 40  # passages in a reranker prompt (paper: top-40)


@stage("dynamicrag.pairs", version=3)  # 3: generator prompts list a question's options
def pairs(scored: Scored, reranker_prompt: RerankerPrompt, generator_prompt: GeneratorPrompt, cfg: PairsConfig,
          ctx: StageContext) -> Preferences:
    """Generator pairs for the first ``generator_cap`` questions, reranker pairs for the rest."""
    prompts = RolePrompts(reranker_prompt.load(), generator_prompt.load())
    # streamed: only the pairs are held, not every question's passages and trajectories
    split = preference_pairs(scored.iter_rows(), prompts, generator_cap=cfg.generator_cap,
                             num_docs=cfg.num_docs, reranker_cap=cfg.reranker_cap)
    ctx.log.info("%d scored questions -> %d generator pairs, %d reranker pairs; counts by reason: "
                 "%s", scored.num_rows, len(split.generator), len(split.reranker),
                 split.skipped or "{}")
    if scored.num_rows and not split.generator and not split.reranker:
        ctx.log.warning("no preference pair at all: every question had equal rewards or a "
                        "single trajectory (sample more trajectories, or at temperature > 0)")
    return split.generator + split.reranker
