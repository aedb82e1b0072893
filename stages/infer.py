"""Stage ``infer``: answers for evaluation questions, DynamicRAG style or with fixed top-k.

Seed steps: DynamicRAG ``inference.py`` (SEEDS 1.3 step 13) and ``top_inference.py`` (step 14).

Modes:

* ``dynamic`` (the paper's two calls): the model, as reranker, reads the question and the first
  ``num_docs`` (40) passages and outputs the ids it needs; the model, as generator, answers from
  those passages (greedy, 200 tokens).
* ``topk``: no reranking; the generator reads the first ``k`` retrieved passages. ``k: 0`` is
  the no-retrieval baseline ("Retrieved Content: None").
* ``windowed``: for more passages than one prompt holds (``top_n`` > ``num_docs``): rerank in
  windows of ``num_docs``, keep the union, rerank the survivors until at most ``num_docs`` remain
  (:func:`stages.lib.windows.select_windowed`), then one generator call.

Fixes relative to the seeds: an out-of-range id is dropped instead of moving the question to a
"remain" file; the answer style comes from each row's ``dataset`` (the seed matched the input
*file name*); the generator sees the passages in the training format ("Topic:", renumbered),
not the "Title: {title}." variant; the windowed mode maps ids through the window offset (the seed
could only ever select passages of the first window) and terminates.

Output rows (``Predictions``) keep the passages shown (``ctxs``), the 1-based positions of the
passages given to the generator (``selected``), the reranker's raw output (``selection``;
for ``topk`` and ``windowed`` the final ids formatted ``[1], [2]``) and the ``prediction``.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.api import ConfigError, StageContext, nonsemantic, stage
from stages.lib.prompts import (format_selection, generator_messages, parse_selection,
                                reranker_messages)
from stages.schemas import Model, Predictions, Retrieved

MODES = ("dynamic", "topk", "windowed")
CTX_FIELDS = ("id", "title", "text", "score")


@dataclass
class InferConfig:
    mode: str = "dynamic"                # dynamic (paper) | topk | windowed
    num_docs: int = 40                   # reranker window (paper: ctxs[:40]; 20 for 4k contexts)
    k: int = 10                          # topk: passages given to the generator; 0 = none
    top_n: int = 200                     # windowed: passages considered (paper: 50 ... 500)
    rerank_temperature: float = 0.0      # greedy; the paper samples one selection at T=0.4
    rerank_max_new_tokens: int = 100     # paper: 100
    max_new_tokens: int = 200            # generator, greedy (paper: 200)
    dataset: str | None = None           # answer style for all rows; None = each row's dataset
    backend: str = "auto"                # auto | transformers | vllm (paper: vLLM, TP=8)
    seed: int = 0                        # used when rerank_temperature > 0
    batch_size: int = nonsemantic(16)    # generated rows per forward (transformers backend)


def _ctx(doc: dict) -> dict:
    return {k: doc.get(k) for k in CTX_FIELDS}


@stage("infer", version=1, shard_by="questions")
def infer(questions: Retrieved, model: Model, cfg: InferConfig,
          ctx: StageContext) -> Predictions:
    """Rerank-then-generate (``dynamic``), fixed top-k, or windowed reranking, per question."""
    from stages.lib.generate import load_generator
    from stages.lib.windows import select_windowed

    if cfg.mode not in MODES:
        raise ConfigError(f"infer: mode must be one of {MODES}, got {cfg.mode!r}")
    if cfg.num_docs < 1 or cfg.k < 0 or cfg.top_n < 1:
        raise ConfigError(f"infer: need num_docs >= 1, k >= 0, top_n >= 1 (got "
                          f"{cfg.num_docs}, {cfg.k}, {cfg.top_n})")
    rows = questions.rows()
    if not rows:
        return []
    shown = {"dynamic": cfg.num_docs, "topk": cfg.k, "windowed": cfg.top_n}[cfg.mode]
    for row in rows:
        row["ctxs"] = [_ctx(d) for d in (row.get("ctxs") or [])[:shown]]
    gen = load_generator(str(model.path), backend=cfg.backend, device=ctx.device)
    rerank_kw = dict(max_new_tokens=cfg.rerank_max_new_tokens,
                     temperature=cfg.rerank_temperature, seed=cfg.seed,
                     batch_size=cfg.batch_size)

    if cfg.mode == "topk":
        for row in rows:
            row["selected"] = list(range(1, len(row["ctxs"]) + 1))
            row["selection"] = format_selection(row["selected"])
    elif cfg.mode == "dynamic":
        todo = [r for r in rows if r["ctxs"]]
        texts = gen.chat([reranker_messages(r["question"], r["ctxs"]) for r in todo],
                         progress=lambda it: ctx.progress(it, desc="rerank"), **rerank_kw)
        for row, (text,) in zip(todo, texts):
            row["selection"] = text
            row["selected"] = parse_selection(text, len(row["ctxs"]))
        for row in rows:
            if not row["ctxs"]:
                row["selected"], row["selection"] = [], format_selection([])
    else:
        for row in ctx.progress(rows, desc="windowed rerank"):
            def rerank_fn(windows, question=row["question"]):
                out = gen.chat([reranker_messages(question, w) for w in windows], **rerank_kw)
                return [parse_selection(text, len(w)) for (text,), w in zip(out, windows)]

            position = {id(d): i for i, d in enumerate(row["ctxs"], start=1)}
            kept = select_windowed(row["ctxs"], cfg.num_docs, rerank_fn)
            row["selected"] = [position[id(d)] for d in kept]
            row["selection"] = format_selection(row["selected"])

    convs = [generator_messages(r["question"], [r["ctxs"][i - 1] for i in r["selected"]],
                                r.get("dataset") or "" if cfg.dataset is None else cfg.dataset)
             for r in rows]
    answers = gen.chat(convs, max_new_tokens=cfg.max_new_tokens, temperature=0.0,
                       batch_size=cfg.batch_size,
                       progress=lambda it: ctx.progress(it, desc="generate"))
    for row, (answer,) in zip(rows, answers):
        row["prediction"] = answer
    ctx.log.info("%s: %d questions, %.1f passages given to the generator on average (of %d "
                 "shown)", cfg.mode, len(rows), sum(len(r["selected"]) for r in rows) / len(rows),
                 shown)
    return rows
