"""Stage ``selfrag.label``: the critic's second pass and the generator's training targets
(Self-RAG's G4 + G6 + G7 steps).

For each item that retrieves, every sentence has its own retrieved passages (from the shared
``retrieve`` stage run on ``selfrag.split``'s sentence queries). The critic decides, for sentences
after the first, whether they need new evidence ([Retrieval] / [Continue to Use Evidence] /
[No Retrieval]), and judges relevance and support of each of the first ``top_n`` passages. The
assembly rules of :mod:`stages.selfrag.assembly` (seeded) then write the target with reflection
tokens, and the drop rules apply. Output: chat rows ``user: instruction`` / ``assistant: target``
for the generator's SFT.

What each critic prompt is filled with, as the seed's ``create_retrieval_data.py`` and
``create_prompt_data.py`` build it (``data_creation/generator``):

* multi-sentence decision (sentence k > 0): the task input (the instruction without its task
  boilerplate, :func:`stages.selfrag.split.task_input`), the preceding sentences, the sentence,
  and as evidence the first passage of the *initial* retrieval — one search per item for its
  instruction and whole output (the ``initial`` input), the same passage for every sentence of
  the item (:func:`evidence`), not the passages retrieved for the previous sentence;
* relevance of a passage: the instruction and the passage;
* support of sentence k by a passage: the instruction, the preceding sentences
  (:func:`preceding`), the sentence and the passage.

A missing value (the first sentence's preceding sentences, an item the initial retrieval found
nothing for) is written ``None``, as the seed's prompts print it.

An item whose utility judgment ``selfrag.split`` could not read (``utility`` None) is dropped
before any critic call, as the seed's postprocessing skips it; the log counts them.

Fixes relative to the seed: every row of every job is labelled (the seed split prompts into
``len // num_jobs`` rows per job and dropped the remainder, and its critic never wrote the last
partial batch of predictions); see :mod:`stages.selfrag.assembly` for the assembly fixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge, Interval

from orchestrator.api import StageContext, stage
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Chat, Model, Retrieved
from stages.selfrag.schemas import IsRelPrompt, MultiRetrievalPrompt, SplitItems, SupportPrompt
from stages.selfrag.sentences import NONE, preceding
from stages.selfrag.split import task_input


@dataclass
class LabelConfig:
    llm: EndpointConfig = field(default_factory=lambda: EndpointConfig(backend="transformers", model=""))
    top_n: Annotated[int, Ge(1)] = 10  # seed: --top_n 10 passages per sentence
    max_tokens: Annotated[int, Ge(1)] = 15  # seed: 15 tokens, greedy
    keep_no_retrieval: Annotated[float, Interval(ge=0, le=1)] = 0.4  # seed: an initial
    # [No Retrieval] item is kept with probability 0.4 (thinning them out of its instruction mix)
    seed: Annotated[int, Ge(0)] = 0


def _text(c: dict) -> str:
    return f"{c.get('title') or ''}\n{c.get('text') or ''}".strip()


def evidence(initial: dict | None) -> str:
    """The evidence of an item's multi-sentence decisions: the first passage of its initial
    retrieval (instruction + whole output), ``title\\ntext``; ``None`` without one.

    >>> evidence({"id": "q1", "ctxs": [{"title": "Velmora", "text": "A river city."},
    ...                                {"title": "Brook", "text": "A mill."}]})
    'Velmora\\nA river city.'
    >>> evidence({"id": "q2", "ctxs": []}), evidence(None)
    ('None', 'None')
    """
    ctxs = list((initial or {}).get("ctxs") or [])
    return _text(ctxs[0]) if ctxs else NONE


def _jobs(items: list[dict], by_sentence: dict[str, dict], initial: dict[str, dict],
          top_n: int) -> list[tuple]:
    """(kind, item index, sentence index, passage index, prompt fields) for every critic call."""
    jobs = []
    for i, item in enumerate(items):
        if item["decision"] != "[Retrieval]" or item.get("utility") is None:
            continue
        for k, sentence in enumerate(item["sentences"]):
            hit = by_sentence.get(f"{item['id']}#{k}")
            if hit is None:
                continue
            before = preceding(item["sentences"], k)
            if k > 0:
                jobs.append(("multi", i, k, None, {
                    "instruction": task_input(item["question"]), "preceding": before,
                    "evidence": evidence(initial.get(item["id"])), "sentence": sentence}))
            for p, c in enumerate(list(hit["ctxs"] or [])[:top_n]):
                jobs.append(("relevance", i, k, p, {"instruction": item["question"],
                                                    "evidence": _text(c)}))
                jobs.append(("support", i, k, p, {"instruction": item["question"],
                                                  "preceding": before, "evidence": _text(c),
                                                  "output": sentence}))
    return jobs


def rows_of(retrieved: Retrieved, ids: list[str], top_n: int) -> dict[str, dict]:
    """``{id: row}`` of the rows of ``retrieved`` whose id is in ``ids``, their ``ctxs`` cut to
    the first ``top_n`` (all the label step reads), a row group at a time: each shard read the
    whole tables as Python rows (about 15 GB a shard at the paper's 150,000 instructions,
    memory audit 44).

    A sentence's passages are keyed ``{item id}#{sentence index}``; an item's initial ones by
    the item's id.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = pa.array(ids, pa.string())
    out: dict[str, dict] = {}
    for piece in retrieved.iter_tables(1024, columns=["id", "ctxs"]):
        piece = piece.filter(pc.is_in(piece.column("id"), value_set=keep))
        if piece.num_rows:
            at = piece.schema.get_field_index("ctxs")
            piece = piece.set_column(at, "ctxs", pc.list_slice(piece.column("ctxs"), 0, top_n))
            out.update((r["id"], r) for r in piece.to_pylist())
    return out


def _warn_one_retrieval_class(items: SplitItems, cfg: LabelConfig, ctx: StageContext) -> None:
    """A WARNING when no generator target of the whole step can start with [No Retrieval]: the
    critic chose [Retrieval] for every item with a readable utility, or ``keep_no_retrieval`` is
    0. Read from the whole table, not this shard's rows (a shard may hold only items that
    retrieve: the demo's made-up no-retrieval instructions come last), so shard 0 says it once.
    ``selfrag.split`` warns for the opposite case."""
    from stages.selfrag.tokens import NO_RETRIEVAL

    whole = [r for r in type(items)(items.ref).rows(["dataset", "decision", "utility"])
             if r["utility"] is not None]
    no_ret = sum(r["decision"] == NO_RETRIEVAL for r in whole)
    made_up = sum(r["dataset"] == "no_retrieval" for r in whole)
    then = ("so no generator target starts with [No Retrieval]: the generator never learns it "
            "and adaptive retrieval will always retrieve, like always-retrieve")
    if whole and not no_ret:
        ctx.log.warning(
            "%s: the critic chose [Retrieval] for all %d items (all shards%s), %s; %s", ctx.step,
            len(whole), f"; {made_up} of them made-up instructions that need no documents"
            if made_up else "", then,
            "train the critic more (steps.critic.max_steps, epochs) or check the judge's labels "
            "in its log" if made_up else "mix in instructions that need no documents (steps."
            "instructions.no_retrieval, the demo's 60; 0 leaves them out) or train the critic "
            "more (steps.critic.max_steps, epochs)")
    elif no_ret and cfg.keep_no_retrieval == 0:
        ctx.log.warning("%s: keep_no_retrieval is 0: it drops all %d items the critic chose "
                        "[No Retrieval] for, %s; raise steps.%s.keep_no_retrieval (paper: 0.4)",
                        ctx.step, no_ret, then, ctx.step)


# 5: NQ's [No Retrieval] items thinned once, not twice
# 6: the task input also without the seed's "TASK_INST## Input:\n\n" boilerplate
@stage("selfrag.label", version=7,  # 7: stops at end of turn
       shard_by="items",
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def label(items: SplitItems, sentences: Retrieved, initial: Retrieved, critic: Model,
          relevance_prompt: IsRelPrompt, support_prompt: SupportPrompt,
          multi_retrieval_prompt: MultiRetrievalPrompt, cfg: LabelConfig,
          ctx: StageContext) -> Chat:
    """Generator training rows with reflection tokens."""
    import random

    from stages.lib.endpoint import open_client
    from stages.lib.endpoint.checkpoint import local_llm
    from stages.lib.prompts import messages
    from stages.selfrag.assembly import Judged, Sentence, assemble, fever_labels, keep
    from stages.selfrag.judgments import relevance_token, retrieval_token, support_token

    if ctx.shard_index == 0:
        _warn_one_retrieval_class(items, cfg, ctx)
    rows = items.rows()
    if not rows:
        return []
    prompts = {"relevance": relevance_prompt.load(), "support": support_prompt.load(),
               "multi": multi_retrieval_prompt.load()}
    wanted = [f"{r['id']}#{k}" for r in rows for k in range(len(r["sentences"]))]
    by_sentence = rows_of(sentences, wanted, cfg.top_n)
    jobs = _jobs(rows, by_sentence, rows_of(initial, [r["id"] for r in rows], 1), cfg.top_n)
    answers: dict[tuple, str] = {}
    if jobs:
        llm = local_llm(cfg.llm, critic, "label.llm")
        asks = [messages(prompts[kind], **fields) for kind, _, _, _, fields in jobs]
        with open_client(llm, ctx.scratch / "critic", device=ctx.device,
                         answers=ctx.answers, refresh=ctx.forced, where="label.llm") as client:
            replies = client.chat(asks, max_tokens=cfg.max_tokens, temperature=0.0,
                                  progress=lambda it: ctx.progress(it, desc="critic labels"))
        answers = {job[:4]: r.text for job, r in zip(jobs, replies)}
    out, dropped, unreadable = [], 0, 0
    for i, item in enumerate(rows):
        if item.get("utility") is None:      # seed: "utility_i_token invalid", the item skipped
            unreadable += 1
            continue
        # one generator per item, seeded by its id: the same targets whatever the shard count
        rng = random.Random(f"{cfg.seed}:{item['id']}")
        segs = []
        for k, text in enumerate(item["sentences"]):
            hit = by_sentence.get(f"{item['id']}#{k}") or {"ctxs": []}
            judged = tuple(Judged(c.get("title") or "", c.get("text") or "",
                                  relevance_token(answers.get(("relevance", i, k, p), "")),
                                  support_token(answers.get(("support", i, k, p), "")))
                           for p, c in enumerate(list(hit["ctxs"] or [])[:cfg.top_n]))
            decision = retrieval_token(answers["multi", i, k, None]) if ("multi", i, k, None) in answers \
                else "[No Retrieval]"
            segs.append(Sentence(text, item["skipped"][k], decision, judged))
        dataset = item.get("dataset") or ""
        target = assemble((item.get("answers") or [""])[0], segs, item["decision"], item["utility"],
                          dataset, rng, cfg.keep_no_retrieval)
        if target is None or not keep(target, dataset, rng, item["decision"]):
            dropped += 1
            continue
        out.append({"id": item["id"], "task": "generator",
                    "messages": [{"role": "user", "content": item["question"]},
                                 {"role": "assistant", "content": fever_labels(target)}]})
    no_ret = sum(r["messages"][1]["content"].startswith("[No Retrieval]") for r in out)
    ctx.log.info("label: %d items, %d critic calls, %d targets written (%d start with [Retrieval], "
                 "%d with [No Retrieval]), %d dropped by the rules, %d dropped for an unreadable "
                 "utility judgment", len(rows), len(jobs), len(out), len(out) - no_ret, no_ret,
                 dropped, unreadable)
    return out
