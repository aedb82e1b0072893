"""Stage ``dynamicrag.reward``: score each sampled DynamicRAG trajectory by the quality of its answer.

Seed step: ``reward_trajectories.py`` + ``utils.py`` (SEEDS 1.3 step 10). The reward of a
trajectory is a weighted sum of five [0, 1] components, each averaged over the gold answers
(see :mod:`stages.dynamicrag.reward_logic`): BERTScore F1, ROUGE-L F, containment "EM", length penalty
1 / (1 + selected passages), and an LLM judge's 0..100 score / 100.

Weights: the paper uses 0.2 for all five. BERTScore needs an extra package (``bert-score`` and a
RoBERTa-large download) and the judge needs GPT-4o or a local judge model, so both default to 0
here and the remaining three keep 0.2 each. Weights are relative: they are divided by their sum
(the defaults become 1/3 each; the paper's setting is all five at 0.2).

Judge backends (``judge``): ``none`` (default); ``openai``, an OpenAI-compatible chat endpoint
(``base_url``, ``model``, key from the environment variable ``api_key_env``; a vLLM or SGLang
server works too); ``local``, a chat checkpoint directory ``model`` run in-process (transformers,
or vLLM on a GPU). All judge requests of a shard go out as one batch.

Fixes relative to the seeds: the judge's "Score: N" is parsed and divided by 100 (the seed
returned a string); the length penalty counts the trajectory's own passages (the seed's was the
constant 1/9); a string gold is one answer (the seed iterated its characters); a weight > 0
without its scorer is an error, not a silent 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.api import ConfigError, StageContext, nonsemantic, stage
from stages.dynamicrag.reward_logic import (COMPONENTS, check_weights, judge_prompt, judge_requests,
                                            make_bertscore, score_group)
from stages.dynamicrag.schemas import Scored, Trajectories


@dataclass
class RewardConfig:
    weight_bertscore: float = 0.0        # paper 0.2; needs `pip install bert-score`
    weight_rouge_l: float = 0.2          # paper 0.2 ("textual fluency")
    weight_containment_em: float = 0.2   # paper 0.2 ("exact match", really containment)
    weight_length_penalty: float = 0.2   # paper 0.2; 1 / (1 + selected passages)
    weight_judge: float = 0.0            # paper 0.2 (GPT-4o); needs `judge` below
    judge: Literal["none", "openai", "local"] = "none"
    base_url: str | None = None          # openai: endpoint (None = api.openai.com)
    model: str = "gpt-4o"                # openai: model name; local: checkpoint directory
    api_key_env: str = "OPENAI_API_KEY"  # openai: environment variable holding the key
    judge_max_tokens: int = 512          # the judge explains, then ends with "Score: N"
    bertscore_model: str | None = None   # None = bert-score's default for English (roberta-large)
    bertscore_lang: str = "en"
    batch_size: int = nonsemantic(16)    # concurrent judge requests / local judge batch


def _weights(cfg: RewardConfig) -> dict[str, float]:
    raw = {name: getattr(cfg, f"weight_{name}") for name in COMPONENTS}
    try:
        check_weights(raw)
    except ValueError as err:
        raise ConfigError(f"reward: {err}") from None
    total = sum(raw.values())
    if total <= 0:
        raise ConfigError("reward: all weights are 0; set at least one weight_* above 0")
    return {name: w / total for name, w in raw.items()}


def _judge_replies(cfg: RewardConfig, ctx: StageContext,
                   requests: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """Ask the configured judge about every distinct (question, gold, response) once."""
    from stages.lib.models.generation import load_generator, openai_generator

    unique = list(dict.fromkeys(requests))
    if cfg.judge == "openai":
        judge = openai_generator(cfg.base_url, cfg.model, cfg.api_key_env)
    else:
        judge = load_generator(cfg.model, device=ctx.device)
    ctx.log.info("judge (%s, %s): %d requests", cfg.judge, cfg.model, len(unique))
    conversations = [[{"role": "user", "content": judge_prompt(*r)}] for r in unique]
    try:
        replies = judge.chat(conversations, max_new_tokens=cfg.judge_max_tokens, temperature=0.0,
                             batch_size=cfg.batch_size,
                             progress=lambda it: ctx.progress(it, desc="judge"))
    finally:
        judge.close()
    return {r: texts[0] for r, texts in zip(unique, replies)}


@stage("dynamicrag.reward", version=1, shard_by="trajectories")
def reward(trajectories: Trajectories, cfg: RewardConfig, ctx: StageContext) -> Scored:
    """One reward per trajectory (weighted [0, 1] components) and its parts."""
    weights = _weights(cfg)
    if weights["judge"] > 0 and cfg.judge == "none":
        raise ConfigError("reward: weight_judge > 0 but judge is 'none'",
                          hint="set judge: openai (with model, api_key_env) or judge: local "
                               "(model: a chat checkpoint directory), or weight_judge: 0")
    if weights["judge"] == 0 and cfg.judge != "none":
        ctx.log.warning("judge '%s' is configured but weight_judge is 0: not called", cfg.judge)
    bertscore = None
    if weights["bertscore"] > 0:
        try:
            bertscore = make_bertscore(lang=cfg.bertscore_lang, model_type=cfg.bertscore_model,
                                       device=ctx.device)
        except ImportError as err:
            raise ConfigError(f"reward: {err}") from None

    rows = trajectories.rows()
    replies: dict[tuple[str, str, str], str] = {}
    if weights["judge"] > 0:
        requests = [req for row in rows for req in judge_requests(
            row["question"], row.get("answers"),
            [t["response"] or "" for t in row.get("trajectories") or []])]
        replies = _judge_replies(cfg, ctx, requests)

    out, no_signal, total = [], 0, 0.0
    for row in ctx.progress(rows, desc="reward"):
        trajs = row.get("trajectories") or []
        responses = [t["response"] or "" for t in trajs]
        score = score_group(row["question"], row.get("answers"), responses,
                            [t["ids"] or [] for t in trajs], weights,
                            judge=lambda q, g, r: replies[(q, g, r)], bertscore=bertscore)
        no_signal += not any(score.parts)
        total += sum(score.rewards)
        out.append({**row, "rewards": score.rewards, "reward_parts": score.parts})
    n_traj = sum(len(r.get("trajectories") or []) for r in rows)
    ctx.log.info("scored %d trajectories of %d questions (mean reward %.4f); %d questions have "
                 "no preference signal (no gold or identical responses)", n_traj, len(rows),
                 total / max(n_traj, 1), no_signal)
    return out
