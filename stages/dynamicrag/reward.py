"""Stage ``dynamicrag.reward``: score each sampled DynamicRAG trajectory by the quality of its answer.

Seed step: ``reward_trajectories.py`` + ``utils.py`` (SEEDS 1.3 step 10). The reward of a
trajectory is a weighted sum of five [0, 1] components, each averaged over the gold answers
(see :mod:`stages.dynamicrag.reward_logic`): BERTScore F1, ROUGE-L F, containment "EM", length penalty
1 / (1 + selected passages), and an LLM judge's 0..100 score / 100.

Weights (``weights:``, one per component): the paper uses 0.2 for all five. BERTScore needs an
extra package (``bert-score`` and a RoBERTa-large download) and the judge needs GPT-4o or a local
judge model, so both default to 0 here and the remaining three keep 0.2 each. Weights are
relative: they are divided by their sum (the defaults become 1/3 each).

The judge (``judge:``, an :class:`~stages.lib.endpoint.EndpointConfig` section, needed when
``weights.judge > 0``) is any LLM endpoint: an OpenAI-compatible server (``backend: openai``,
``base_url``, ``model``, the key's environment variable ``api_key_env``; vLLM's or SGLang's server
works too) or a checkpoint run in-process (``backend: transformers`` or ``vllm``). Its prompt is
the ``judge_prompt`` file (``conf/prompts/dynamicrag/judge.yaml``; fields ``question``, ``gold``,
``response``). Every request is cached (a server's answers in the cache's ``answers/``, shared by
steps; see ``docs/llm-endpoint.md``), so a killed step resumes without asking twice. When more than 5 % of the judge's replies carry no "Score: N"
(empty replies, replies cut off at ``judge_max_tokens``) the step fails in one line rather than
scoring them 0; fewer are scored 0, with one warning line.

    reward:
      weights: {bertscore: 0.2, rouge_l: 0.2, containment_em: 0.2, length_penalty: 0.2, judge: 0.2}
      judge: {backend: openai, model: gpt-4o, api_key_env: OPENAI_API_KEY}

ROUGE-L (``rouge``): ``rouge_score`` (Google's package: lower-cased alphanumeric tokens; the
default, robust to case and punctuation) or ``pltrdy`` (the PyPI ``rouge`` package the original
code called: case-sensitive, punctuation kept on tokens, summary-level LCS over "."-split
sentences; ``pip install rouge``). They disagree: "Paris" against the gold "Paris, France" scores
0.667 with ``rouge_score`` and 0.0 with ``pltrdy``. The paper recipe uses ``pltrdy``, to train on
the reward the paper trained on.

BERTScore is rescaled with bert-score's baseline and can go below 0 for unrelated texts; it is
clamped to [0, 1] here (the seed kept negative values), so every component stays in [0, 1].

The judge is asked greedily (temperature 0, at most ``judge_max_tokens``), with the prompt file's
messages only; the original called GPT-4o at the API's default temperature with the system
message "You are a helpful Assistant." (add ``system:`` to the prompt file for it). A greedy
judge keeps a cached reward what a rerun would compute.

pltrdy's ROUGE-L is asked ``get_scores(response, gold)``, the original reward's order (its
evaluation used the other order; the two differ on texts of several sentences), and scores 0
where pltrdy raises on a response of sentence marks only, as the original's ``try`` did.

Fixes relative to the seeds: the judge's "Score: N" is parsed and divided by 100 (the seed
returned a string); the length penalty counts the trajectory's own passages (the seed's was the
constant 1/9); a string gold is one answer (the seed iterated its characters); a weight > 0
without its scorer is an error, not a silent 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge, Le

from orchestrator.api import ConfigError, RagError, StageContext, nonsemantic, stage
from stages.dynamicrag.reward_logic import (judge_requests, judge_score, judge_unscored,
                                            make_bertscore, score_group)
from stages.dynamicrag.schemas import JudgePrompt, Scored, Trajectories
from stages.lib.endpoint import EndpointConfig
from stages.lib.prompts import messages

Weight = Annotated[float, Ge(0)]


@dataclass
class RewardWeights:
    """Relative weight of each reward component (divided by their sum)."""

    bertscore: Weight = 0.0              # paper 0.2; needs `pip install bert-score`
    rouge_l: Weight = 0.2                # paper 0.2 ("textual fluency")
    containment_em: Weight = 0.2         # paper 0.2 ("exact match", really containment)
    length_penalty: Weight = 0.2         # paper 0.2; 1 / (1 + selected passages)
    judge: Weight = 0.0                  # paper 0.2 (GPT-4o); needs the `judge` section


@dataclass
class RewardConfig:
    weights: RewardWeights = field(default_factory=RewardWeights)
    judge: EndpointConfig | None = None  # the LLM judge; required when weights.judge > 0
    judge_max_tokens: Annotated[int, Ge(1)] = 512  # the judge explains, then "Score: N"
    # the share of a shard's judge replies that may carry no score (they score 0); above it
    # the step fails (None: reward_logic.MAX_UNSCORED, 0.05); it decides no reward value
    judge_max_unscored: Annotated[float, Ge(0), Le(1)] | None = nonsemantic(None)
    bertscore_model: str | None = None   # None = bert-score's default for English (roberta-large);
    # a model name, or a local checkpoint directory (named after its model: models/roberta-large)
    bertscore_lang: str = "en"
    bertscore_rescale: bool = True       # bert-score's baseline rescaling (the seed's setting)
    rouge: Literal["rouge_score", "pltrdy"] = "rouge_score"   # the paper's code: pltrdy (see doc)

    def __post_init__(self):
        if sum(asdict(self.weights).values()) <= 0:
            raise ConfigError("weights: all are 0; set at least one above 0")
        if self.weights.judge > 0 and self.judge is None:
            raise ConfigError("weights.judge > 0 but there is no judge section",
                              hint="add judge: {backend: openai, model: gpt-4o} (any "
                                   "OpenAI-compatible server), or backend: transformers with a "
                                   "checkpoint as model; or set weights.judge: 0")

    def needed_env(self) -> dict[str, str]:
        """The judge endpoint's key, only when the judge is called (weights.judge > 0)."""
        if self.judge is None or self.weights.judge <= 0:
            return {}
        return {f"judge.{k}": v for k, v in self.judge.needed_env().items()}

    def plan_notes(self, resources: dict) -> list[str]:
        """The weights in use, printed under the step by ``rag plan``.

        >>> RewardConfig().plan_notes({})[0][:60]
        'reward weights: bertscore 0, rouge_l 0.333, containment_em 0'
        """
        weights = ", ".join(f"{k} {v:.3g}" for k, v in self.normalized_weights().items())
        judge = (f"; judge: {self.judge.backend} {self.judge.model}"
                 if self.judge is not None and self.weights.judge > 0 else "")
        return [f"reward weights: {weights} (ROUGE-L: {self.rouge}{judge})"]

    def normalized_weights(self) -> dict[str, float]:
        """The weights divided by their sum.

        >>> RewardConfig().normalized_weights()["rouge_l"] == 1 / 3
        True
        """
        raw = asdict(self.weights)
        total = sum(raw.values())
        return {name: w / total for name, w in raw.items()}


def _judge_replies(cfg: RewardConfig, prompt_file: JudgePrompt | None, ctx: StageContext,
                   requests: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """Ask the configured judge about every distinct (question, gold, response) once."""
    from stages.lib.endpoint import open_client

    if prompt_file is None:
        raise ConfigError(f"steps.{ctx.step}: weights.judge > 0 but no judge_prompt input",
                          hint="wire inputs.judge_prompt to a prompt file "
                               "(conf/prompts/dynamicrag/judge.yaml)")
    prompt = prompt_file.load()
    unique = list(dict.fromkeys(requests))
    ctx.log.info("judge (%s, %s): %d requests", cfg.judge.backend, cfg.judge.model, len(unique))
    conversations = [messages(prompt, question=q, gold=g, response=r) for q, g, r in unique]
    with open_client(cfg.judge, ctx.scratch / "judge", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced,
                     where=f"steps.{ctx.step}.judge") as llm:
        replies = llm.chat(conversations, max_tokens=cfg.judge_max_tokens, temperature=0.0,
                           progress=lambda it: ctx.progress(it, desc="judge"))
    summary, too_many = judge_unscored([reply.text for reply in replies], cfg.judge_max_unscored)
    if too_many:
        unscored = [reply for reply in replies if judge_score(reply.text) is None]
        cut = sum("length" in (reply.meta.get("finish_reasons") or ()) for reply in unscored)
        empty = sum(reply.unanswered for reply in unscored)
        allow = f"or let them score 0: steps.{ctx.step}.judge_max_unscored=0.5"
        raise RagError(f"steps.{ctx.step}.judge: {summary}: check judge_max_tokens / the server",
                       hint=f"{cut} of them were cut off at judge_max_tokens "
                            f"({cfg.judge_max_tokens}): raise it, {allow}" if cut else
                       f"{empty} were empty (not cached: a rerun asks them again); the others "
                       f"are cached: fix the judge's prompt or model, {allow}" if empty else
                       f"the judge must end its reply with 'Score: N': fix its prompt or model "
                       f"(its replies are cached; --force asks again), {allow}")
    if summary:
        ctx.log.warning("judge: %s; they score 0", summary)
    return {r: reply.text for r, reply in zip(unique, replies)}


def _bertscore(cfg: RewardConfig, ctx: StageContext):
    """The BERTScore scorer, its model loaded now: a missing package or model is a one-line
    error before any scoring, not a hub traceback."""
    where = f"steps.{ctx.step}"
    try:
        return make_bertscore(lang=cfg.bertscore_lang, model_type=cfg.bertscore_model,
                              rescale_with_baseline=cfg.bertscore_rescale, device=ctx.device)
    except ImportError as err:
        raise ConfigError(f"{where}: {err}") from None
    except ValueError as err:
        raise ConfigError(f"{where}.bertscore_model: {err}") from None
    except OSError as err:
        model = cfg.bertscore_model or f"bert-score's default for {cfg.bertscore_lang!r}"
        raise ConfigError(
            f"{where}.bertscore_model: cannot load the BERTScore model {model} "
            f"({str(err).splitlines()[0]})",
            hint=f"without network, download it once (roberta-large for English) and set "
                 f"{where}.bertscore_model to the local folder, named after the model "
                 f"(models/roberta-large); or set {where}.weights.bertscore=0") from None


# 3: a bare-number judge reply; 4: judge replies mostly without a score fail the step (they
# scored 0 and were committed)
@stage("dynamicrag.reward", version=5, shard_by="trajectories",  # 5: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def reward(trajectories: Trajectories, cfg: RewardConfig, ctx: StageContext,
           judge_prompt: JudgePrompt | None = None) -> Scored:
    """One reward per trajectory (weighted [0, 1] components) and its parts."""
    weights = cfg.normalized_weights()
    if weights["judge"] == 0 and cfg.judge is not None:
        ctx.log.warning("a judge is configured but weights.judge is 0: not called")
    bertscore = None
    if weights["bertscore"] > 0:
        bertscore = _bertscore(cfg, ctx)

    table = trajectories.read()    # the passages stay in Arrow: no step below reads them
    rows = table.drop_columns(["ctxs"]).to_pylist()
    replies: dict[tuple[str, str, str], str] = {}
    if weights["judge"] > 0:
        requests = [req for row in rows for req in judge_requests(
            row["question"], row.get("answers"),
            [t["response"] or "" for t in row.get("trajectories") or []])]
        replies = _judge_replies(cfg, judge_prompt, ctx, requests)

    rewards, parts, no_signal, total = [], [], 0, 0.0
    for row in ctx.progress(rows, desc="reward"):
        trajs = row.get("trajectories") or []
        responses = [t["response"] or "" for t in trajs]
        score = score_group(row["question"], row.get("answers"), responses,
                            [t["ids"] or [] for t in trajs], weights,
                            judge=lambda q, g, r: replies[(q, g, r)], bertscore=bertscore,
                            rouge=cfg.rouge)
        no_signal += not any(score.parts)
        total += sum(score.rewards)
        rewards.append(score.rewards)
        parts.append(score.parts)
    n_traj = sum(len(r.get("trajectories") or []) for r in rows)
    ctx.log.info("scored %d trajectories of %d questions (mean reward %.4f); %d questions have "
                 "no preference signal (no gold or identical responses)", n_traj, len(rows),
                 total / max(n_traj, 1), no_signal)
    return with_rewards(table, rows, rewards, parts, ctx.step)


def with_rewards(table, rows: list[dict], rewards: list, parts: list, step: str):
    """The rows the stage returned before, as the writer converts them (``Scored.from_rows``:
    declared types, pass-through columns typed from their values), with ``table``'s passages
    kept in Arrow and cast to the declared ``ctxs`` type: the old code's bytes.

    >>> import pyarrow as pa
    >>> row = {"id": "q0", "dataset": "nq", "question": "q?", "answers": [], "gold": [],
    ...        "trajectories": [{"ids": [1], "selection": "[1]", "response": "a"}], "extra": 1}
    >>> t = pa.Table.from_pylist([{**row, "ctxs": []}])
    >>> out = with_rewards(t, [row], [[0.5]], [[{"rouge_l": 0.5}]], "reward")
    >>> out.column_names[-3:], out.column("reward_parts").to_pylist()
    (['rewards', 'reward_parts', 'extra'], [[[('rouge_l', 0.5)]]])
    """
    declared = Scored.schema.field("ctxs")
    out = Scored.from_rows([{**row, "ctxs": None, "rewards": r, "reward_parts": p}
                            for row, r, p in zip(rows, rewards, parts)], f"step '{step}' output")
    return out.set_column(out.schema.get_field_index("ctxs"), declared,
                          table.column("ctxs").cast(declared.type))
