"""Stage ``reinforced_ir.synthesize``: pseudo queries from the target corpus, with quality control.

Seed step: ``generate_universal_query.py`` (SEEDS §5.3 step 1): shuffle the corpus and keep
``n_passages`` (15,000 in the paper); for each passage ask the LLM (gpt-4o-mini, T 0.5) for one
query under a sampled length and style constraint; then ask again, with a 0/1 prompt, whether the
passage answers the query (the original samples it as the query, T 0.5, max_tokens 4,096),
and keep the pair when the answer contains "1".

Claim datasets (``stance``): the original asks SciFact's, FEVER's and Climate-FEVER's passages,
at random per passage, for a claim the passage supports or one it refutes (``stance: random``;
ArguAna: always refutes, ``stance: refutes``), with claim lengths (10 to 15 words ×5, at least 15
×2) instead of the question lengths (``stages.reinforced_ir.synthesis``). The query prompt gets
the stance as ``{relation}`` ("answers" for questions), so a prompt file must use it to ask for
a stance; one without it still serves questions.

Each query becomes a ``Questions`` row whose ``gold`` is its source passage id (the positive in
every later step). Every LLM call goes through the shared endpoint client, cached
(``docs/llm-endpoint.md``): a killed step resumes where it stopped (the original only skipped a dataset
whose output file already existed). The log reports how many pairs the filter kept.

Not shardable: which passages are asked about is one sample of the whole corpus drawn with
``seed``, each passage's length and style constraint is the next draw of the same generator, and
query ids number the picked passages in order, so a shard of the corpus would pick other
passages. A server is asked ``llm.max_concurrency`` requests at a time (nonsemantic: raise it to
go faster).

Few-shot examples (``examples``, an optional input): the original shows the LLM three example
passages with the query written for each (``get_query_generation_prompt(...,
use_examples=True)``, the same three for every passage of a dataset, taken from that dataset).
Wire a file of examples (``conf/prompts/reinforced_ir/query_examples.yaml``: our own, for
scientific claims; replace it with examples of your corpus) and a query prompt with
``{examples}`` (``query_fewshot.yaml``), where the rendered block goes
(``synthesis.render_examples``); the paper recipe does. One without the other is refused before
any request. No draw is added: the length, style and stance asked of each passage are the same
with or without examples.

Version 1 still: with ``stance: none`` (the default) the draws and the rendered prompts are
those from before stances existed (the shipped prompt says "answers" through ``{relation}``),
so every request, its cached answer and the output are unchanged; without ``examples`` (an
input left unwired stays out of the cache key) the same holds. The quality check's
``quality_temperature`` and ``quality_max_tokens`` default to the values it always used (0.0
and 4; the paper's check reuses the query call's T 0.5 and max_tokens, as the paper recipe
sets); it now also sends ``top_p`` and ``seed`` (the query call's), which change no greedy
verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le

from orchestrator.api import ConfigError, DataError, StageContext, added, stage
from stages.lib.endpoint import EndpointConfig
from stages.reinforced_ir.schemas import QualityPrompt, QueryExamples, QueryPrompt
from stages.reinforced_ir.synthesis import STANCES
from stages.schemas import Model, Passages, Questions


def _synth_llm() -> EndpointConfig:
    return EndpointConfig(backend="openai", model="gpt-4o-mini")   # paper: gpt-4o-mini


@dataclass
class SynthesizeConfig:
    llm: EndpointConfig = field(default_factory=_synth_llm)
    temperature: Annotated[float, Ge(0)] = 0.5  # paper: 0.5
    top_p: Annotated[float, Gt(0), Le(1)] = 1.0  # paper: 1.0
    n_passages: Annotated[int, Ge(1)] = 15000  # paper: 15,000 passages per dataset
    task: str = "Given a question, retrieve passages that answer the question."
    query_type: str = "question"          # what to write (claim datasets: "claim")
    passage_type: str = "passage"
    # claims: "random" asks each passage for a claim it supports or refutes, drawn per passage
    # (paper: SciFact, FEVER, Climate-FEVER); "supports"/"refutes" always that (paper: ArguAna,
    # refutes); any of them draws claim lengths. "none": a question the passage answers
    stance: Literal["none", "supports", "refutes", "random"] = added("none")
    quality_control: bool = True          # paper: on
    # the 0/1 check's sampling: 0.0 and 4 tokens (a digit); the paper reuses the query call's
    # temperature (0.5) and max_tokens (conf/reinforced_ir_llama3.yaml sets them so)
    quality_temperature: Annotated[float, Ge(0)] = added(0.0)
    quality_max_tokens: Annotated[int, Ge(1)] = added(4)
    max_passage_chars: Annotated[int, Ge(1)] = 8000  # paper: the first 8,000 characters
    query_max_tokens: Annotated[int, Ge(1)] = 64  # the query call (paper: 4,096; a query is short)
    seed: Annotated[int, Ge(0)] = 0
    dataset: str = "synthetic"

    def __post_init__(self):
        if self.stance not in STANCES:
            raise ConfigError(f"stance: {self.stance!r} is not one of {', '.join(STANCES)}",
                              hint="none for questions; random for claim datasets (the paper's "
                                   "SciFact, FEVER, Climate-FEVER); refutes for ArguAna")


@stage("reinforced_ir.synthesize", version=2,  # 2: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def synthesize(corpus: Passages, query_prompt: QueryPrompt, quality_prompt: QualityPrompt,
               cfg: SynthesizeConfig, ctx: StageContext, model: Model | None = None,
               examples: QueryExamples | None = None) -> Questions:
    """Pseudo queries with their source passage as ``gold``."""
    import random

    from stages.lib.endpoint import open_client
    from stages.lib.prompts import messages
    from stages.lib.endpoint.checkpoint import local_llm
    from stages.reinforced_ir.synthesis import (clean_query, constraints, quality_ok,
                                                quality_relation, render_examples)

    query_tpl, quality_tpl = query_prompt.load(), quality_prompt.load()
    shots = examples.load() if examples is not None else None
    _check_examples(query_tpl, shots)
    block = render_examples(shots, cfg.query_type, cfg.passage_type) if shots else ""
    if cfg.stance != "none":
        _check_relation(query_tpl, cfg, "Write one {query_type} that this {passage_type} "
                                        "{relation}.", "query.yaml")
        if cfg.quality_control:
            _check_relation(quality_tpl, cfg, "Decide whether the passage {relation} the query.",
                            "quality.yaml")
    llm = local_llm(cfg.llm, model, "synthesize.llm")
    size = corpus.num_rows
    if not size:
        raise DataError("synthesize: the corpus is empty")
    rng = random.Random(cfg.seed)
    # the positions a sample of the rows would pick (sample draws by position), read alone
    at = rng.sample(range(size), min(cfg.n_passages, size))
    picked = corpus.take(at, ["id", "title", "text"]).to_pylist()
    texts = [(p.get("title") + "\n" if p.get("title") else "") + p["text"] for p in picked]
    asks = [messages(query_tpl, task=cfg.task, passage=t[:cfg.max_passage_chars],
                     query_type=cfg.query_type, passage_type=cfg.passage_type,
                     examples=block, **constraints(rng, cfg.stance))
            for t in texts]

    with open_client(llm, ctx.scratch / "llm", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced, where="synthesize.llm") as client:
        replies = client.chat(asks, max_tokens=cfg.query_max_tokens, temperature=cfg.temperature,
                              top_p=cfg.top_p, seed=cfg.seed,
                              progress=lambda it: ctx.progress(it, desc="synthesize queries"))
        queries = [clean_query(r.text) for r in replies]
        keep = [bool(q) for q in queries]
        if cfg.quality_control:
            relation = quality_relation(cfg.stance)
            checks = [messages(quality_tpl, task=cfg.task, query=q, relation=relation,
                               passage=t[:cfg.max_passage_chars])
                      for q, t in zip(queries, texts)]
            verdicts = client.chat(checks, max_tokens=cfg.quality_max_tokens,
                                   temperature=cfg.quality_temperature, top_p=cfg.top_p,
                                   seed=cfg.seed,
                                   progress=lambda it: ctx.progress(it, desc="quality control"))
            keep = [k and quality_ok(v.text) for k, v in zip(keep, verdicts)]

    out = [{"id": f"pq{i}", "dataset": cfg.dataset, "question": q, "answers": [],
            "gold": [str(p["id"])]}
           for i, (p, q, k) in enumerate(zip(picked, queries, keep)) if k]
    written = sum(bool(q) for q in queries)
    ctx.log.info("synthesize: %d passages, %d queries written, %d kept by quality control (%.0f%%)",
                 len(picked), written, len(out), 100.0 * len(out) / max(1, len(picked)))
    if not out:   # every later step would stop on an empty input without saying why
        why = (f"quality control rejected all {written}" if written and cfg.quality_control
               else "the LLM wrote no usable query")
        raise DataError(f"synthesize: no pseudo query kept of {len(picked)} passages: {why}",
                        hint="check the LLM's replies in the step's log and scratch cache; "
                             "quality control keeps a query when the verdict contains '1'")
    return out


def _check_examples(template, shots) -> None:
    """Refuse examples the query prompt would not show, and a prompt that promises examples
    (uses ``{examples}``) when none are wired: either way the LLM would be asked something
    other than what the recipe says."""
    from stages.lib.prompts import placeholders

    uses = "examples" in placeholders(template.user)
    if shots is not None and not uses:
        raise ConfigError(f"prompt file {template.path}: 'user' does not use {{examples}}, so "
                          f"the few-shot examples of {shots.path} would never be shown",
                          hint="use conf/prompts/reinforced_ir/query_fewshot.yaml (or add "
                               "{examples} to 'user'); or leave synthesize's examples input out")
    if shots is None and uses:
        raise ConfigError(f"prompt file {template.path}: 'user' uses {{examples}}, but synthesize "
                          f"has no examples input",
                          hint="wire one: steps.synthesize.inputs.examples (a source such as "
                               "conf/prompts/reinforced_ir/query_examples.yaml, as "
                               "conf/reinforced_ir_llama3.yaml does); or use query.yaml")


def _check_relation(template, cfg: SynthesizeConfig, example: str, shipped: str) -> None:
    """Refuse a prompt file that cannot say the stance: its user message lacks ``{relation}``."""
    from stages.lib.prompts import placeholders

    if "relation" not in placeholders(template.user):
        raise ConfigError(f"prompt file {template.path}: 'user' does not use {{relation}}, so "
                          f"stance: {cfg.stance} cannot say whether the passage supports or "
                          f"refutes the {cfg.query_type}",
                          hint=f"add it, e.g. '{example}' (conf/prompts/reinforced_ir/"
                               f"{shipped}); or set stance: none")
