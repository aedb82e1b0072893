"""Stage ``dynamicrag.infer``: DynamicRAG's answers, the model choosing its own passages.

Seed step: DynamicRAG ``inference.py`` (SEEDS 1.3 step 13). The plain top-k baselines are the
shared stage ``infer_topk`` (:mod:`stages.common.infer_topk`); this stage is DynamicRAG's own
because both modes need its reranker role (its prompt and its ``[1], [3]`` output format).

Modes:

* ``dynamic`` (the paper's two calls): the model, as reranker, reads the question and the first
  ``num_docs`` (40) passages and outputs the ids it needs; the model, as generator, answers from
  those passages (greedy, 200 tokens).
* ``windowed``: for more passages than one prompt holds (``top_n`` > ``num_docs``): rerank in
  windows of ``num_docs``, keep the union, rerank the survivors until at most ``num_docs`` remain
  (:func:`stages.dynamicrag.windows.select_windowed`), then one generator call.

Fixes relative to the seeds: an out-of-range id is dropped instead of moving the question to a
"remain" file; the answer style comes from each row's ``dataset`` (the seed matched the input
*file name*); the generator sees the passages in the training format ("Topic:", renumbered),
not the "Title: {title}." variant, after its answer style and one newline as in training (the
seed's inference put a blank line there); the windowed mode maps ids through the window offset
(the seed could only ever select passages of the first window) and terminates.

Output rows (``Predictions``) keep the passages shown (``ctxs``), the 1-based positions of the
passages given to the generator (``selected``), the reranker's raw output (``selection``; for
``windowed`` the final ids formatted ``[1], [2]``) and the ``prediction``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import StageContext, nonsemantic, stage
from stages.dynamicrag.prompts import format_selection, parse_selection, reranker_messages
from stages.dynamicrag.schemas import RerankerPrompt
from stages.lib.prompts import Prompt, generator_messages, passage_fields
from stages.schemas import GeneratorPrompt, Model, Predictions, Retrieved


@dataclass
class InferConfig:
    mode: Literal["dynamic", "windowed"] = "dynamic"  # dynamic: the paper's two calls
    num_docs: Annotated[int, Ge(1)] = 40  # reranker window (paper: ctxs[:40]; 20 for 4k)
    top_n: Annotated[int, Ge(1)] = 200  # windowed: passages considered (paper: 50 ... 500)
    rerank_temperature: Annotated[float, Ge(0)] = 0.0  # greedy; paper samples at T=0.4
    rerank_max_new_tokens: Annotated[int, Ge(1)] = 100  # paper: 100
    max_new_tokens: Annotated[int, Ge(1)] = 200  # generator, greedy (paper: 200)
    dataset: str | None = None           # answer style for all rows; None = each row's dataset
    backend: Literal["auto", "transformers", "vllm"] = "auto"  # paper: vLLM, TP=8
    seed: Annotated[int, Ge(0)] = 0  # used when rerank_temperature > 0 (with each row's id)
    batch_size: Annotated[int, Ge(1)] = nonsemantic(16)  # rows per forward (transformers)


@stage("dynamicrag.infer", version=5, shard_by="questions",  # 5: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def infer(questions: Retrieved, model: Model, reranker_prompt: RerankerPrompt, generator_prompt: GeneratorPrompt,
          cfg: InferConfig, ctx: StageContext) -> Predictions:
    """Rerank-then-generate (``dynamic``) or windowed reranking, per question."""
    from stages.lib.models.generation import load_generator

    reranker, generator = reranker_prompt.load(), generator_prompt.load()

    rows = questions.rows()
    if not rows:
        return []
    shown = cfg.num_docs if cfg.mode == "dynamic" else cfg.top_n
    for row in rows:
        row["ctxs"] = [passage_fields(d) for d in (row.get("ctxs") or [])[:shown]]
    gen = load_generator(str(model.path), backend=cfg.backend, device=ctx.device)
    if cfg.mode == "dynamic":
        _select_dynamic(rows, gen, reranker, cfg, ctx)
    else:
        _select_windowed(rows, gen, reranker, cfg, ctx)
    convs = [generator_messages(generator, r["question"], [r["ctxs"][i - 1] for i in r["selected"]],
                                _dataset(r, cfg), r.get("choices") or []) for r in rows]
    answers = gen.chat(convs, max_new_tokens=cfg.max_new_tokens, temperature=0.0,
                       batch_size=cfg.batch_size,
                       progress=lambda it: ctx.progress(it, desc="generate"))
    for row, (answer,) in zip(rows, answers):
        row["prediction"] = answer
    ctx.log.info("%s: %d questions, %.1f passages given to the generator on average (of %d "
                 "shown)", cfg.mode, len(rows), sum(len(r["selected"]) for r in rows) / len(rows),
                 shown)
    return rows


def _rerank_kw(cfg: InferConfig) -> dict:
    return dict(max_new_tokens=cfg.rerank_max_new_tokens, temperature=cfg.rerank_temperature,
                batch_size=cfg.batch_size)


def _select_dynamic(rows: list[dict], gen, prompt: Prompt, cfg: InferConfig,
                    ctx: StageContext) -> None:
    """One reranker call per question over its shown passages; sets ``selection``/``selected``.
    A sampled selection (``rerank_temperature`` > 0) is seeded by the question's id, not its
    position in the shard: the same selections whatever the shard count."""
    from stages.lib.models.generation import id_seed

    todo = [r for r in rows if r["ctxs"]]
    texts = gen.chat([reranker_messages(prompt, r["question"], r["ctxs"]) for r in todo],
                     seeds=[id_seed(cfg.seed, r["id"]) for r in todo],
                     progress=lambda it: ctx.progress(it, desc="rerank"), **_rerank_kw(cfg))
    for row, (text,) in zip(todo, texts):
        row["selection"] = text
        row["selected"] = parse_selection(text, len(row["ctxs"]))
    for row in rows:
        if not row["ctxs"]:
            row["selected"], row["selection"] = [], format_selection([])


def _select_windowed(rows: list[dict], gen, prompt: Prompt, cfg: InferConfig,
                     ctx: StageContext) -> None:
    """Windows of ``num_docs`` reranked until at most ``num_docs`` passages survive. Sampled
    (``rerank_temperature`` > 0), a question's windows are seeded by its id and their
    positions, so questions do not share their noise."""
    from stages.dynamicrag.windows import select_windowed
    from stages.lib.models.generation import id_seed

    kw = _rerank_kw(cfg)
    for row in ctx.progress(rows, desc="windowed rerank"):
        def rerank_fn(windows, question=row["question"], seed=id_seed(cfg.seed, row["id"])):
            out = gen.chat([reranker_messages(prompt, question, w) for w in windows], seed=seed,
                           **kw)
            return [parse_selection(text, len(w)) for (text,), w in zip(out, windows)]

        position = {id(d): i for i, d in enumerate(row["ctxs"], start=1)}
        kept = select_windowed(row["ctxs"], cfg.num_docs, rerank_fn)
        row["selected"] = [position[id(d)] for d in kept]
        row["selection"] = format_selection(row["selected"])


def _dataset(row: dict, cfg: InferConfig) -> str:
    """The answer style's dataset name: the config's, else the row's own."""
    return cfg.dataset if cfg.dataset is not None else (row.get("dataset") or "")
