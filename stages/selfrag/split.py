"""Stage ``selfrag.split``: the critic's first pass over the generator's instruction data
(Self-RAG's G1 + G3 steps): the initial retrieval decision and the utility of each output, the
output split into sentences, and one retrieval query per sentence of the items that retrieve
(instruction + " " + sentence), which the shared ``retrieve`` stage answers — the batch retrieval
step the original scripts lacked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from orchestrator.api import StageContext, stage
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Model, Questions
from stages.selfrag.schemas import RetrievalPrompt, SplitItems, UtilityPrompt


class Split(NamedTuple):
    items: SplitItems
    queries: Questions


@dataclass
class SplitConfig:
    llm: EndpointConfig = field(default_factory=lambda: EndpointConfig(backend="transformers", model=""))
    max_tokens: int = 15                  # seed: max_new_tokens 15, greedy
    min_sentence_chars: int = 30          # seed: shorter sentences are not retrieved for (> 2 sentences)


@stage("selfrag.split", version=1, shard_by="instructions",
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def split(instructions: Questions, critic: Model, retrieval_prompt: RetrievalPrompt, utility_prompt: UtilityPrompt,
          cfg: SplitConfig, ctx: StageContext) -> Split:
    """Critic decisions per item and the sentence queries to retrieve for."""
    from stages.lib.endpoint import open_client
    from stages.lib.prompts import messages
    from stages.lib.endpoint.checkpoint import local_llm
    from stages.selfrag.judgments import retrieval_token, utility_token
    from stages.selfrag.sentences import skipped, split_sentences
    from stages.selfrag.tokens import RETRIEVAL, UTILITY

    rows = instructions.rows()
    if not rows:
        return Split([], [])
    ret_p, use_p = retrieval_prompt.load(), utility_prompt.load()
    llm = local_llm(cfg.llm, critic, "split.llm")
    outputs = [(r.get("answers") or [""])[0] for r in rows]
    asks = ([messages(ret_p, instruction=r["question"]) for r in rows]
            + [messages(use_p, instruction=r["question"], output=o) for r, o in zip(rows, outputs)])
    with open_client(llm, ctx.scratch / "critic", device=ctx.device, where="split.llm") as client:
        replies = client.chat(asks, max_tokens=cfg.max_tokens, temperature=0.0,
                              progress=lambda it: ctx.progress(it, desc="critic decisions"))
    n = len(rows)
    items, queries = [], []
    for r, out, dec, use in zip(rows, outputs, replies[:n], replies[n:]):
        sentences = split_sentences(out) or [out]
        r.update(decision=retrieval_token(dec.text), utility=utility_token(use.text) or UTILITY[0],
                 sentences=sentences, skipped=skipped(sentences, cfg.min_sentence_chars))
        items.append(r)
        if r["decision"] != RETRIEVAL:
            continue
        for k, (s, skip) in enumerate(zip(sentences, r["skipped"])):
            if not skip:
                queries.append({"id": f"{r['id']}#{k}", "dataset": r.get("dataset") or "",
                                "question": f"{r['question']} {s}", "answers": [s],
                                "gold": list(r.get("gold") or [])})
    ctx.log.info("split: %d items, %d to retrieve for (%d sentence queries)", len(items),
                 sum(r["decision"] == RETRIEVAL for r in items), len(queries))
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
