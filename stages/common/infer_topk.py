"""Stage ``infer_topk``: answers for evaluation questions from the first ``k`` retrieved passages.

Seed step: DynamicRAG ``top_inference.py`` (SEEDS 1.3 step 14), the plain-RAG baselines of every
recipe. No reranking: the generator reads the first ``k`` retrieved passages in rank order.
``k: 0`` is the no-retrieval baseline ("Retrieved Content: None"). ``k_by_set`` gives another
number to the sets it names (a key is a whole word of the row's ``dataset``), as DPA-RAG's
top-2 for WebQSP.

The prompt file is an input: the recipes give their fixed-k baselines a standard RAG prompt
(``conf/prompts/common/rag.yaml``: passages, then the question), so an untrained model is not
judged through DynamicRAG's generator prompt, which only the DynamicRAG model was trained on; a
model trained on that prompt (the SFT ablation) gets ``conf/prompts/dynamicrag/generator.yaml``,
as the seed's ``top_inference.py`` did for every baseline.

Fixes relative to the seeds: the answer style comes from each row's ``dataset`` (the seed matched
the input *file name*); the generator sees the passages in the training format ("Topic:",
renumbered), not the "Title: {title}." variant.

Answers are greedy by default. ``temperature`` > 0 samples one answer per question (nucleus
``top_p``), seeded: it depends on ``seed`` and the question's id (not on its position in its
shard), so a rerun, or a run with another shard count, gives the same answers (RAG-Instruct's
evaluation: T 0.5, top_p 0.9). The three settings were added after results were cached: at
their defaults they stay out of the cache key.

The generator is the checkpoint wired as ``model`` (run in this process: ``backend``,
``batch_size``) or ``reader``, an LLM endpoint (:class:`~stages.lib.endpoint.EndpointConfig`): a
model only reachable through an API, like DPA-RAG's black-box readers GPT-3.5 and GPT-4, or any
OpenAI-compatible server. The endpoint gets the same conversations, ``max_new_tokens`` as
``max_tokens``, and the step's ``temperature``, ``top_p`` and ``seed`` (sent with every request);
each reply is cached as it arrives, so a killed step resumes without asking twice. Exactly one
of the two is given, which ``rag plan`` checks (:mod:`stages.lib.models.reader`). ``reader`` was
added after results were cached: unset, it stays out of the cache key.

Output rows (``Predictions``, the same with either generator) keep the passages shown
(``ctxs``), their 1-based positions (``selected``, here ``1..k``), the same ids formatted
``[1], [2]`` (``selection``) and the ``prediction``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le

from orchestrator.api import StageContext, added, nonsemantic, stage
from stages.lib.data.set_names import for_set
from stages.lib.endpoint import EndpointConfig
from stages.lib.prompts import generator_messages, passage_fields
from stages.schemas import GeneratorPrompt, Model, Predictions, Retrieved


@dataclass
class InferTopkConfig:
    k: Annotated[int, Ge(0)] = 10  # passages given to the generator; 0 = none
    k_by_set: dict[str, Annotated[int, Ge(0)]] = added({})  # per set, e.g. DPA-RAG {webqsp: 2}
    max_new_tokens: Annotated[int, Ge(1)] = 200     # generator (paper: 200)
    dataset: str | None = None           # answer style for all rows; None = each row's dataset
    backend: Literal["auto", "transformers", "vllm"] = "auto"  # paper: vLLM, TP=8 (model input)
    temperature: Annotated[float, Ge(0)] = added(0.0)   # 0 = greedy; > 0 samples
    top_p: Annotated[float, Gt(0), Le(1)] = added(1.0)  # nucleus when sampling; 1 = all tokens
    seed: Annotated[int, Ge(0)] = added(0)  # seeds the samples (temperature > 0)
    batch_size: Annotated[int, Ge(1)] = nonsemantic(16)  # rows per forward (transformers)
    # an LLM endpoint as the generator, instead of the `model` input (a black-box reader)
    reader: EndpointConfig | None = added(None)

    def plan_notes(self, resources: dict) -> list[str]:
        """``rag plan``: the reader endpoint, if any; refuses both a reader and a wired model,
        or neither (see :func:`stages.lib.models.reader.reader_notes`)."""
        from stages.lib.models.reader import reader_notes

        return reader_notes(self.reader, resources)


@stage("infer_topk", version=5, shard_by="questions",  # 5: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def infer_topk(questions: Retrieved, prompt: GeneratorPrompt, cfg: InferTopkConfig, ctx: StageContext,
               model: Model | None = None) -> Predictions:
    """The generator (``model``, or the ``reader`` endpoint) answers each question from its
    first ``k`` retrieved passages, with the generator prompt file ``prompt`` (fields:
    ``question``, ``passages``, ``style``)."""
    from stages.lib.models.generation import id_seed
    from stages.lib.models.reader import answer

    generator = prompt.load()

    rows = questions.rows()
    if not rows:
        return []
    for row in rows:
        k = for_set(cfg.k_by_set, row.get("dataset") or "", cfg.k)
        row["ctxs"] = [passage_fields(d) for d in (row.get("ctxs") or [])[:k]]
        row["selected"] = list(range(1, len(row["ctxs"]) + 1))
        row["selection"] = ", ".join(f"[{i}]" for i in row["selected"]) or "None"
    convs = [generator_messages(generator, r["question"], r["ctxs"], _dataset(r, cfg),
                                r.get("choices") or []) for r in rows]
    answers = answer(convs, model=model, reader=cfg.reader, ctx=ctx,
                     max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                     top_p=cfg.top_p, seed=cfg.seed, backend=cfg.backend,
                     batch_size=cfg.batch_size, desc="generate",
                     seeds=[id_seed(cfg.seed, r["id"]) for r in rows])
    for row, prediction in zip(rows, answers):
        row["prediction"] = prediction
    ctx.log.info("top-%d: %d questions", cfg.k, len(rows))
    return rows


def _dataset(row: dict, cfg: InferTopkConfig) -> str:
    """The answer style's dataset name: the config's, else the row's own."""
    return cfg.dataset if cfg.dataset is not None else (row.get("dataset") or "")
