"""Stage ``selfrag.split``: the critic's first pass over the generator's instruction data
(Self-RAG's G1 + G3 steps): the initial retrieval decision and the utility of each output, the
output split into sentences, and one retrieval query per sentence of the items that retrieve
(instruction + " " + sentence), which the shared ``retrieve`` stage answers — the batch retrieval
step the original scripts lacked.

The query's instruction is the task input alone: a task item's instruction boilerplate (what
precedes ``## Input:``, ours or the seed's own data's, :func:`task_input`) is left out, as the
seed's ``create_retrieval_data.py`` does, so the retriever sees the question, not the task
description. An item whose utility judgment cannot be read keeps ``utility`` None and gets no
query: ``selfrag.label`` drops it (the seed's postprocessing skips such an item).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, NamedTuple

from annotated_types import Ge

from orchestrator.api import StageContext, stage
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Model, Questions
from stages.selfrag.instructions import INPUT_MARK
from stages.selfrag.schemas import RetrievalPrompt, SplitItems, UtilityPrompt


def task_input(instruction: str) -> str:
    """The instruction without a task item's boilerplate: what follows ``## Input:`` and its blank
    line, with or without a blank line before it (ours has one, the seed's data none: its
    ``create_retrieval_data.py`` lines 68-70 split on ``"## Input:\\n\\n"`` alone).

    >>> task_input("Is the following claim true or false?\\n\\n## Input:\\n\\nParis is in Peru.")
    'Paris is in Peru.'
    >>> task_input("Is the statement correct or not?## Input:\\n\\nParis is in Peru.")   # seed's
    'Paris is in Peru.'
    >>> task_input("Who founded Velmora?")          # open QA: the question as it is
    'Who founded Velmora?'
    """
    return instruction.split(INPUT_MARK, 1)[-1]


class Split(NamedTuple):
    items: SplitItems
    queries: Questions


@dataclass
class SplitConfig:
    llm: EndpointConfig = field(default_factory=lambda: EndpointConfig(backend="transformers", model=""))
    max_tokens: Annotated[int, Ge(1)] = 15  # seed: max_new_tokens 15, greedy
    # seed: shorter sentences are not retrieved for (> 2 sentences)
    min_sentence_chars: Annotated[int, Ge(0)] = 30


# 3: the seed's "TASK_INST## Input:\n\n" boilerplate (no blank line before) is left out too
@stage("selfrag.split", version=4, shard_by="instructions",  # 4: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def split(instructions: Questions, critic: Model, retrieval_prompt: RetrievalPrompt, utility_prompt: UtilityPrompt,
          cfg: SplitConfig, ctx: StageContext) -> Split:
    """Critic decisions per item and the sentence queries to retrieve for."""
    from stages.lib.endpoint import open_client
    from stages.lib.prompts import messages
    from stages.lib.endpoint.checkpoint import local_llm
    from stages.selfrag.judgments import retrieval_token, utility_token
    from stages.selfrag.sentences import skipped, split_sentences
    from stages.selfrag.tokens import RETRIEVAL

    rows = instructions.rows()
    if not rows:
        return Split([], [])
    ret_p, use_p = retrieval_prompt.load(), utility_prompt.load()
    llm = local_llm(cfg.llm, critic, "split.llm")
    outputs = [(r.get("answers") or [""])[0] for r in rows]
    asks = ([messages(ret_p, instruction=r["question"]) for r in rows]
            + [messages(use_p, instruction=r["question"], output=o) for r, o in zip(rows, outputs)])
    with open_client(llm, ctx.scratch / "critic", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced, where="split.llm") as client:
        replies = client.chat(asks, max_tokens=cfg.max_tokens, temperature=0.0,
                              progress=lambda it: ctx.progress(it, desc="critic decisions"))
    n = len(rows)
    items, queries = [], []
    for r, out, dec, use in zip(rows, outputs, replies[:n], replies[n:]):
        sentences = split_sentences(out) or [out]
        r.update(decision=retrieval_token(dec.text), utility=utility_token(use.text),
                 sentences=sentences, skipped=skipped(sentences, cfg.min_sentence_chars))
        items.append(r)
        if r["decision"] != RETRIEVAL or r["utility"] is None:   # None: label drops the item
            continue
        for k, (s, skip) in enumerate(zip(sentences, r["skipped"])):
            if not skip:
                queries.append({"id": f"{r['id']}#{k}", "dataset": r.get("dataset") or "",
                                "question": f"{task_input(r['question'])} {s}", "answers": [s],
                                "gold": list(r.get("gold") or [])})
    unreadable = sum(r["utility"] is None for r in items)
    ctx.log.info("split: %d items, %d to retrieve for (%d sentence queries), %d with an "
                 "unreadable utility judgment (dropped by label)", len(items),
                 sum(r["decision"] == RETRIEVAL and r["utility"] is not None for r in items),
                 len(queries), unreadable)
    data = [r for r in items if r.get("dataset") != "no_retrieval"]
    if data and not any(r["decision"] == RETRIEVAL for r in data):
        # a shard may legitimately hold only items that need no documents, so not an error
        # here; but when every shard says so, retrieve_sentences has no query and fails
        ctx.log.warning("split: the critic chose [No Retrieval] for all %d items from the data "
                        "here: if it does so everywhere, retrieve_sentences gets no query and "
                        "the generator never learns [Retrieval]; train the critic more "
                        "(steps.critic.max_steps, epochs) or check the judge's labels in its log",
                        len(data))
    return Split(items, queries)
