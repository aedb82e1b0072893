"""Stage ``dpa_rag.augment``: five augmentations of each training query, for diverse preference
data.

Seed step: SEEDS 3.2 step 3 (no code released). GPT-3.5-turbo rewrites every query five ways:
``rephrase`` (same intent, other words), ``complexity`` (more semantically complex),
``decompose`` (sub-questions), ``constraint`` (an added condition) and ``sparql`` (the query in
SPARQL syntax). The paper's prompt exists only as an image, so the five prompts are files of our
own wording (``conf/prompts/dpa_rag/<kind>.yaml``, field ``{question}``), wired as the inputs
``<kind>_prompt`` so their text is in the cache key; give the paper's text as your own files to
reproduce it. Only the kinds listed in ``kinds`` are asked, and each needs its prompt wired.

The LLM (``llm``) is a server (default: OpenAI's ``gpt-3.5-turbo``, the key read from the
variable named by ``llm.api_key_env``, ``OPENAI_API_KEY``) or a checkpoint wired as ``model``
and run in process (``llm.backend: transformers`` or ``vllm``). Every call is cached
(``docs/llm-endpoint.md``), so a killed step resumes without asking twice.

The paper gives no temperature: we send 1.0, what the OpenAI API uses when a call sets none
(so most likely what the paper's calls got), which also varies the wording; a rerun gets the
same replies from the cache, and a server that honours ``seed`` the same ones again.
``max_tokens`` (not given either) is 256: enough for a query, its sub-questions or a SPARQL
query.

Output: every original query (``kind: original``, ``source_id`` its own id) followed by one row
per augmentation (id ``{id}#{kind}``, ``question`` the reply with code fences and wrapping quotes
removed, ``answers``/``gold`` the original's). An empty reply is dropped and counted in the log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import ConfigError, StageContext, stage
from stages.dpa_rag.schemas import Augmented, QueryAugmentPrompt
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Model, Questions

KINDS = ("rephrase", "complexity", "decompose", "constraint", "sparql")
Kind = Literal["rephrase", "complexity", "decompose", "constraint", "sparql"]


def _aug_llm() -> EndpointConfig:
    return EndpointConfig(backend="openai", model="gpt-3.5-turbo")   # paper: GPT-3.5-turbo


@dataclass
class AugmentConfig:
    llm: EndpointConfig = field(default_factory=_aug_llm)
    kinds: list[Kind] = field(default_factory=lambda: list(KINDS))   # paper: all five
    temperature: Annotated[float, Ge(0)] = 1.0   # paper: not given; the OpenAI API default
    max_tokens: Annotated[int, Ge(1)] = 256      # paper: not given
    seed: Annotated[int, Ge(0)] = 0

    def __post_init__(self):
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds or len(set(self.kinds)) < len(self.kinds):
            problem = f"unknown {unknown}" if unknown else "empty" if not self.kinds else \
                "lists a kind twice"
            raise ConfigError(f"kinds: {problem}", hint=f"known: {list(KINDS)}")


def clean_reply(text: str) -> str:
    """The augmented query in a reply: stripped, without a code fence or wrapping quotes.

    >>> clean_reply('  "Who wrote Hamlet?"\\n')
    'Who wrote Hamlet?'
    >>> clean_reply("```sparql\\nSELECT ?x WHERE { ?x wdt:P50 ?y }\\n```")
    'SELECT ?x WHERE { ?x wdt:P50 ?y }'
    >>> clean_reply("   ")
    ''
    """
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.removesuffix("```").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


@stage("dpa_rag.augment", version=2, shard_by="queries",  # 2: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def augment(queries: Questions, cfg: AugmentConfig, ctx: StageContext,
            model: Model | None = None, rephrase_prompt: QueryAugmentPrompt | None = None,
            complexity_prompt: QueryAugmentPrompt | None = None,
            decompose_prompt: QueryAugmentPrompt | None = None,
            constraint_prompt: QueryAugmentPrompt | None = None,
            sparql_prompt: QueryAugmentPrompt | None = None) -> Augmented:
    """Each query and its augmentations of the ``kinds`` asked (the same seed, the same ones)."""
    from stages.lib.endpoint import open_client
    from stages.lib.endpoint.checkpoint import local_llm
    from stages.lib.prompts import messages

    files = {"rephrase": rephrase_prompt, "complexity": complexity_prompt,
             "decompose": decompose_prompt, "constraint": constraint_prompt,
             "sparql": sparql_prompt}
    for kind in cfg.kinds:
        if files[kind] is None:
            raise ConfigError(f"steps.{ctx.step}: kinds lists {kind!r} but the input "
                              f"'{kind}_prompt' is not wired",
                              hint=f"wire inputs.{kind}_prompt to a prompt file "
                                   f"(conf/prompts/dpa_rag/{kind}.yaml), or drop {kind!r} "
                                   "from kinds")
    templates = {kind: files[kind].load() for kind in cfg.kinds}
    rows = queries.rows()
    if not rows:
        return []

    asks = [messages(templates[kind], question=row["question"])
            for row in rows for kind in cfg.kinds]
    where = f"steps.{ctx.step}.llm"
    llm = local_llm(cfg.llm, model, where)
    with open_client(llm, ctx.scratch / "llm", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced, where=where) as client:
        replies = iter(client.chat(asks, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                                   seed=cfg.seed,
                                   progress=lambda it: ctx.progress(it, desc="augment")))

    out, empty = [], Counter()
    for row in rows:
        out.append({**row, "source_id": row["id"], "kind": "original"})
        for kind in cfg.kinds:
            question = clean_reply(next(replies).text)
            if not question:
                empty[kind] += 1
                continue
            out.append({**row, "id": f"{row['id']}#{kind}", "question": question,
                        "source_id": row["id"], "kind": kind})
    ctx.log.info("augment: %d queries, %d augmentations (kinds %s, T %.2f); empty replies "
                 "dropped per kind: %s", len(rows), len(out) - len(rows), list(cfg.kinds),
                 cfg.temperature, dict(empty) or "none")
    return out
