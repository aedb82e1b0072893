"""Stage ``rag_instruct.synthesize``: a question q* and answer a* for each exemplar, written
under its paradigm from its source documents, imitating the exemplar instruction.

Seed step: ``data_gen/generate_data.py`` (SEEDS 4.3 step 3): the paradigm's prompt is filled
with the documents (``[i]: text``, from 0) and the exemplar; GPT-4o answers with JSON
``{"q*": ..., "a*": ...}``; a reply that does not parse is asked again, up to 5 times, and an
exemplar that never parses is dropped. The seed sent neither a temperature (the API's default,
1.0) nor a token limit (``generate_data.py`` calls ``gpt.call(content)`` with no arguments; its
``retry_call``, which would ask for 4,096, is never called); ``max_tokens`` is a cap of ours.

Teachers (``teacher``):

* ``llm``: an LLM through the shared endpoint client (``llm``: a server such as GPT-4o or
  ``vllm serve``; or a checkpoint wired as ``model`` run in process), each call cached
  (``docs/llm-endpoint.md``), so a killed step resumes without asking twice. Each new attempt
  uses the next seed, so a cached unreadable reply is not simply read back.
* ``reference``: no LLM: q* is the exemplar's own question and a* its first gold answer. It
  needs exemplars chosen with ``select: has_answer`` (the documents then fit the paradigm by
  construction) and exists for machines without a capable LLM: measured on the CPU demo's
  knowledge base, SmolLM2-135M-Instruct wrote no parseable JSON for any of 12 documents. It
  cannot tell a supporting document from a useless one (both lack the answer), so it suits the
  answer paradigms, and ``useless_doc`` where the model can know the answer without documents.

The prompts are five files, one per paradigm (``conf/prompts/rag_instruct/``, our own
wording; fields ``{documents}`` and ``{example}``); replace them with the paper's
``prompt_final.py`` text to reproduce it. The log counts the examples kept per paradigm.

Shardable on ``exemplars`` (``shards: N``; with ``gpus: 1`` each shard runs its own in-process
teacher): an example depends only on its exemplar, the prompts and the teacher, since every
request of attempt k carries seed ``seed + k`` whatever its position, and the endpoint answers
each request alone. Unsharded, a step where no exemplar gives an example (or, with the
``reference`` teacher, none has a gold answer) fails with a ``DataError``. With shards, such a
shard is not an error, since the others may give examples: it logs a warning and writes no rows;
if every shard is empty, the next step refuses its empty input and points to this step's log.
Each shard's log counts its own exemplars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import DataError, StageContext, stage
from stages.lib.endpoint import EndpointConfig
from stages.lib.prompts import Prompt
from stages.rag_instruct.schemas import Exemplars, Synthesized, SynthesisPrompt
from stages.schemas import Model


def _synth_llm() -> EndpointConfig:
    return EndpointConfig(backend="openai", model="gpt-4o")   # paper: gpt-4o


@dataclass
class SynthesizeConfig:
    teacher: Literal["llm", "reference"] = "llm"
    llm: EndpointConfig = field(default_factory=_synth_llm)
    temperature: Annotated[float, Ge(0)] = 1.0   # the seed sends none: the API default, 1.0
    max_tokens: Annotated[int, Ge(1)] = 4096     # ours: the seed sends no limit
    max_attempts: Annotated[int, Ge(1)] = 5      # paper: 5 tries for a reply that parses
    seed: Annotated[int, Ge(0)] = 0

    def needed_env(self) -> dict[str, str]:
        """The teacher endpoint's key, only when the teacher is the LLM."""
        if self.teacher != "llm":
            return {}
        return {f"llm.{k}": v for k, v in self.llm.needed_env().items()}


@stage("rag_instruct.synthesize", version=2, shard_by="exemplars",  # 2: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def synthesize(exemplars: Exemplars, useless_doc_prompt: SynthesisPrompt,
               single_doc_support_prompt: SynthesisPrompt,
               multi_doc_support_prompt: SynthesisPrompt,
               single_doc_answer_prompt: SynthesisPrompt,
               multi_doc_answer_prompt: SynthesisPrompt, cfg: SynthesizeConfig, ctx: StageContext,
               model: Model | None = None) -> Synthesized:
    """One (q*, a*) per exemplar whose teacher reply is usable."""
    rows = exemplars.rows()
    if not rows:
        return _nothing(ctx, f"step '{ctx.step}': no exemplars to synthesise from")
    if cfg.teacher == "reference":
        pairs = _reference(rows)
        if not any(pairs):
            return _nothing(ctx, f"step '{ctx.step}': teacher 'reference' needs exemplars with "
                                 "gold answers, and none has one", hint="use teacher: llm")
    else:
        files = {"useless_doc": useless_doc_prompt, "single_doc_support": single_doc_support_prompt,
                 "multi_doc_support": multi_doc_support_prompt,
                 "single_doc_answer": single_doc_answer_prompt,
                 "multi_doc_answer": multi_doc_answer_prompt}
        pairs = _ask(rows, {k: f.load() for k, f in files.items()}, cfg, model, ctx)

    out = []
    for row, pair in zip(rows, pairs):
        if pair is None:
            continue
        question, answer = pair
        out.append({"id": f"{row['id']}-syn", "dataset": row.get("dataset") or "rag_instruct",
                    "question": question, "answers": [answer],
                    "gold": [d["id"] for d in row["docs"] if d.get("id") is not None],
                    "paradigm": row["paradigm"], "example": row["question"], "docs": row["docs"]})
    paradigms = dict.fromkeys(r["paradigm"] for r in rows)
    kept = {p: sum(r["paradigm"] == p for r in out) for p in paradigms}
    ctx.log.info("synthesize (%s): %d of %d exemplars gave an example; by paradigm %s",
                 cfg.teacher, len(out), len(rows), kept)
    if not out:
        return _nothing(ctx, f"step '{ctx.step}': no exemplar gave a usable (q*, a*)",
                        hint="see the step's log; a small model may not write the JSON reply")
    return out


def _nothing(ctx: StageContext, message: str, hint: str | None = None) -> list[dict]:
    """No examples: a ``DataError`` for the whole step; one shard of several logs a warning and
    writes no rows (the other shards may give examples)."""
    if ctx.num_shards == 1:
        raise DataError(message, hint=hint)
    ctx.log.warning("%s in shard %d of %d; it writes no rows", message, ctx.shard_index + 1,
                    ctx.num_shards)
    return []


def _reference(rows: list[dict]) -> list[tuple[str, str] | None]:
    """The exemplar's own question and first gold answer; None where it has no answer."""
    answers = [[a for a in (r.get("answers") or []) if a.strip()] for r in rows]
    return [(r["question"], a[0]) if a else None for r, a in zip(rows, answers)]


def _ask(rows: list[dict], templates: dict[str, Prompt], cfg: SynthesizeConfig,
         model: Model | None, ctx: StageContext) -> list[tuple[str, str] | None]:
    from stages.lib.endpoint import open_client
    from stages.lib.endpoint.checkpoint import local_llm
    from stages.lib.prompts import messages
    from stages.rag_instruct.synthesis import parse_reply, render_documents

    asks = [messages(templates[r["paradigm"]], documents=render_documents(r["docs"]),
                     example=r["question"]) for r in rows]
    pairs: list[tuple[str, str] | None] = [None] * len(rows)
    where = f"{ctx.step}.llm"
    llm = local_llm(cfg.llm, model, where)
    with open_client(llm, ctx.scratch / "llm", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced, where=where) as client:
        todo = list(range(len(rows)))
        for attempt in range(cfg.max_attempts):
            if not todo:
                break
            desc = f"synthesize (attempt {attempt + 1})"
            replies = client.chat([asks[i] for i in todo], max_tokens=cfg.max_tokens,
                                  temperature=cfg.temperature, seed=cfg.seed + attempt,
                                  progress=lambda it, desc=desc: ctx.progress(it, desc=desc))
            for i, reply in zip(todo, replies):
                pairs[i] = parse_reply(reply.text)
            todo = [i for i in todo if pairs[i] is None]
            ctx.log.info("synthesize attempt %d: %d replies still unreadable", attempt + 1,
                         len(todo))
    return pairs
