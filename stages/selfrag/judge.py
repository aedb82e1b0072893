"""Stage ``selfrag.judge``: teacher judgments turned into the critic's training rows (Self-RAG's
C1 + C2 steps).

For each instruction with its retrieved passages, five aspects are judged: retrieval need,
relevance of each of the first ``top_n`` passages, support of the output by each of them,
utility of the output, and, for each sentence of the output after the first, what it needs
([Retrieval] / [Continue to Use Evidence] / [No Retrieval]: the seed's three-way
multi-sentence task, which ``selfrag.label`` asks the critic). The teacher is an LLM through the
shared endpoint client (the paper used GPT-4; any OpenAI-compatible server; every call cached
(``docs/llm-endpoint.md``), so a killed step resumes without paying twice) or
``reference``, which derives the same labels from the gold passage ids and answers
(:mod:`stages.selfrag.reference`). Each judgment becomes one chat row — the aspect's prompt file
filled for the item, answered by the token string — and the rows pass the paper's rules
(:func:`stages.selfrag.critic_data.critic_rows`: [Relevant] kept with probability 0.7,
template-breaking rows dropped, shuffled, a dev split).

Teacher and critic prompts: the LLM teacher is asked the critic's prompt file unless the
aspect's ``teacher_*`` input is wired (the pipeline's ``prompts.teacher_*``, null by default).
The seed kept them apart: GPT-4 got few-shot prompts asking for a rating and an explanation
(``data_creation/critic/gpt4_reward/chatgpt_*.py``), and the critic was trained on short
zero-shot instruction / input pairs (``combine_chat_gpt_reward.py``). Give your teacher files to
reproduce that: the teacher's reply is read for its label (a token, Yes / No, or a rating, as
:mod:`stages.selfrag.judgments` reads it) and the critic's row keeps the critic's prompt. The
critic's row is a chat (the whole prompt file as the user turn), rendered by the critic's chat
template (``conf/selfrag/alpaca.jinja``: ``### Instruction:\\n{prompt}\\n\\n### Response:\\n``);
the seed's critic text was ``### Instruction:\\n{aspect instruction}\\n\\n### Input:\\n{fields}
\\n\\n### Response:{label}`` (``train_special_tokens.py``). ragline trains and asks its critic
the same way, so it is self-consistent, but not the seed's layout.

The instruction is the row's ``question``; its output is ``answers[0]``, split into sentences as
``selfrag.split`` splits it. Support is judged sentence by sentence, each with the sentences
before it (``None`` for the first), as the seed's critic data and ``selfrag.label`` have it; the
seed judged each sentence against passages retrieved for that sentence, here against the
instruction's passages (one search per instruction). A later sentence's decision is asked as
``selfrag.label`` asks it: the task input, the sentences before it, and the instruction's first
passage as the evidence. The ``reference`` teacher's support reads the item's gold answers, so
it gives every sentence of an item the item's verdict. A teacher reply that names no valid
decision is dropped, as the seed's combine step drops it.

Not shardable, though each judgment depends only on its instruction: the rules that follow
draw from one seeded generator over all judgments in order, shuffle them all, and take the first
``dev_size`` as the dev split, so concatenated shards would not be the unsharded output. A
server teacher is asked ``llm.max_concurrency`` requests at a time (nonsemantic: raise it to go
faster).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, NamedTuple

from annotated_types import Ge

from orchestrator.api import ConfigError, DataError, StageContext, stage
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Chat, Retrieved
from stages.selfrag.schemas import (IsRelPrompt, MultiRetrievalPrompt, RetrievalPrompt,
                                    SupportPrompt, UtilityPrompt)
from stages.selfrag.sentences import NONE, preceding, split_sentences
from stages.selfrag.split import task_input
from stages.selfrag.tokens import RELEVANT


class CriticData(NamedTuple):
    train: Chat
    dev: Chat


@dataclass
class JudgeConfig:
    teacher: Literal["reference", "llm"] = "llm"
    llm: EndpointConfig = field(default_factory=lambda: EndpointConfig(model="gpt-4", max_tokens=200))
    top_n: Annotated[int, Ge(1)] = 3  # passages judged per instruction
    dev_size: Annotated[int, Ge(0)] = 1500  # paper: the first 1,500 shuffled rows
    seed: Annotated[int, Ge(0)] = 0

    def needed_env(self) -> dict[str, str]:
        """The teacher endpoint's key, only when the teacher is the LLM."""
        if self.teacher != "llm":
            return {}
        return {f"llm.{k}": v for k, v in self.llm.needed_env().items()}


def _passage(ctx: dict) -> str:
    return f"{ctx.get('title') or ''}\n{ctx.get('text') or ''}".strip()


def judgment_rows(rows: list[dict], top_n: int) -> list[dict]:
    """One job per (aspect, item[, passage]): the fields its prompt is filled with.

    >>> jobs = judgment_rows([{"id": "q", "question": "Who?", "answers": ["Ann"],
    ...                        "ctxs": [{"id": "p", "title": "T", "text": "Ann did."}]}], 3)
    >>> [j["task"] for j in jobs]
    ['retrieval', 'utility', 'relevance', 'support']
    >>> jobs = judgment_rows([{"id": "q", "question": "Who?", "answers": ["Ann. She did."],
    ...                        "ctxs": []}], 3)
    >>> [j["task"] for j in jobs], jobs[-1]["fields"]["preceding"]
    (['retrieval', 'utility', 'multi_retrieval'], 'Ann.')

    Support is asked per sentence, with the sentences before it:

    >>> jobs = judgment_rows([{"id": "q", "question": "Who?", "answers": ["Ann. She did."],
    ...                        "ctxs": [{"id": "p", "title": "T", "text": "Ann did."}]}], 3)
    >>> [(j["fields"]["preceding"], j["fields"]["output"]) for j in jobs if j["task"] == "support"]
    [('None', 'Ann.'), ('Ann.', 'She did.')]
    """
    jobs = []
    for r in rows:
        inst, out = r["question"], (r.get("answers") or [""])[0]
        jobs.append({"task": "retrieval", "row": r, "fields": {"instruction": inst}})
        jobs.append({"task": "utility", "row": r, "fields": {"instruction": inst, "output": out}})
        sentences, ctxs = split_sentences(out), list(r.get("ctxs") or [])
        sentences = sentences if len(sentences) > 1 else [out]   # one: the output as it is
        first = _passage(ctxs[0]) if ctxs else NONE
        for k in range(1, len(sentences)):
            jobs.append({"task": "multi_retrieval", "row": r, "ctx": ctxs[0] if ctxs else None,
                         "tag": f"s{k}",   # the row id's last part: the sentence, not a passage
                         "fields": {"instruction": task_input(inst),
                                    "preceding": preceding(sentences, k), "evidence": first,
                                    "sentence": sentences[k]}})
        for c in ctxs[:top_n]:
            ev = _passage(c)
            jobs.append({"task": "relevance", "row": r, "ctx": c,
                         "fields": {"instruction": inst, "evidence": ev}})
            for k, sentence in enumerate(sentences):   # as selfrag.label asks it
                jobs.append({"task": "support", "row": r, "ctx": c,
                             **({"tag": f"s{k}:{c.get('id', '')}"} if k else {}),
                             "fields": {"instruction": inst, "preceding": preceding(sentences, k),
                                        "output": sentence, "evidence": ev}})
    return jobs


def without_gold(rows: list[dict]) -> tuple[int, int]:
    """(instructions from the data, those of them without gold passage ids): what the
    ``reference`` teacher labels from. The added no-retrieval items need none.

    >>> without_gold([{"dataset": "nq", "gold": ["p1"]}, {"dataset": "nq", "gold": []},
    ...               {"dataset": "no_retrieval", "gold": []}])
    (2, 1)
    """
    data = [r for r in rows if r.get("dataset") != "no_retrieval"]
    return len(data), sum(not r.get("gold") for r in data)


def check_gold(rows: list[dict], ctx: StageContext) -> None:
    """DataError when no instruction from the data has gold passage ids (the reference teacher
    would call every one [No Retrieval] and every passage [Irrelevant]: the critic would learn
    never to retrieve); a warning when some lack them."""
    data, missing = without_gold(rows)
    if data and missing == data:
        raise DataError(f"steps.{ctx.step}: teacher: reference needs gold passage ids, and none of "
                        f"the {data} instructions from the data has any (column 'gold'); it "
                        f"would label every one [No Retrieval] and every passage [Irrelevant]",
                        hint="give the training questions a 'gold' list of corpus passage ids, "
                             f"or set steps.{ctx.step}.teacher: llm")
    if missing:
        ctx.log.warning("judge: %d of %d instructions from the data have no gold passage ids; the "
                        "reference teacher labels them [No Retrieval]", missing, data)


def label_counts(judged: list[dict]) -> str:
    """Each aspect's labels with their counts, for the log.

    >>> label_counts([{"task": "relevance", "output": "[Relevant]"},
    ...               {"task": "relevance", "output": "[Irrelevant]"},
    ...               {"task": "relevance", "output": "[Relevant]"}])
    'relevance: [Relevant] 2, [Irrelevant] 1'
    """
    from collections import Counter

    by_task: dict[str, Counter] = {}
    for row in judged:
        by_task.setdefault(row["task"], Counter())[row["output"]] += 1
    return "; ".join(f"{task}: " + ", ".join(f"{label} {n}" for label, n in counts.most_common())
                     for task, counts in by_task.items())


def _reference_label(job: dict) -> str:
    from stages.selfrag import reference

    task, row = job["task"], job["row"]
    if task == "retrieval":
        return reference.retrieval_need(row)
    if task == "utility":
        return reference.utility(row)
    if task == "multi_retrieval":
        return reference.sentence_need(row, job["ctx"])
    return getattr(reference, task)(row, job["ctx"])


def _read(task: str, text: str) -> str | None:
    from stages.selfrag import judgments

    if task in ("retrieval", "multi_retrieval"):
        return judgments.teacher_retrieval_token(text, three_way=task == "multi_retrieval")
    return {"utility": judgments.utility_token, "relevance": judgments.relevance_token,
            "support": judgments.support_token}[task](text)


def _teacher_labels(jobs: list[dict], asks: list, teacher: dict, cfg: JudgeConfig,
                    ctx: StageContext) -> list[str | None]:
    """Each job's label: the reference rules', or the LLM teacher's reply to the aspect's teacher
    prompt (``teacher[task]``, or None: the critic's prompt ``asks``) read as a token."""
    from stages.lib.endpoint import open_client
    from stages.lib.prompts import messages

    if cfg.teacher == "reference":
        return [_reference_label(j) for j in jobs]
    asks = [messages(teacher[j["task"]], **j["fields"]) if teacher[j["task"]] else a
            for j, a in zip(jobs, asks)]
    with open_client(cfg.llm, ctx.scratch / "teacher", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced, where="judge.llm") as client:
        replies = client.chat(asks, progress=lambda it: ctx.progress(it, desc="teacher"))
    return [_read(j["task"], r.text) for j, r in zip(jobs, replies)]


# 2: per sentence; unreadable replies dropped
# 3: a later sentence's task input also without the seed's "TASK_INST## Input:\n\n" boilerplate
@stage("selfrag.judge", version=4,  # 4: stops at end of turn
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def judge(retrieved: Retrieved, retrieval_prompt: RetrievalPrompt, relevance_prompt: IsRelPrompt,
          support_prompt: SupportPrompt, utility_prompt: UtilityPrompt,
          multi_retrieval_prompt: MultiRetrievalPrompt, cfg: JudgeConfig,
          ctx: StageContext, teacher_retrieval_prompt: RetrievalPrompt | None = None,
          teacher_relevance_prompt: IsRelPrompt | None = None,
          teacher_support_prompt: SupportPrompt | None = None,
          teacher_utility_prompt: UtilityPrompt | None = None,
          teacher_multi_retrieval_prompt: MultiRetrievalPrompt | None = None) -> CriticData:
    """Critic training rows (train, dev) from the teacher's five judgments (``teacher_*``: the
    LLM teacher's own prompt for an aspect; unwired, it gets the critic's)."""
    import random

    from stages.lib.prompts import messages
    from stages.selfrag.critic_data import critic_rows

    prompts = {"retrieval": retrieval_prompt.load(), "relevance": relevance_prompt.load(),
               "support": support_prompt.load(), "utility": utility_prompt.load(),
               "multi_retrieval": multi_retrieval_prompt.load()}
    teacher = {k: f.load() if f is not None else None for k, f in (
        ("retrieval", teacher_retrieval_prompt), ("relevance", teacher_relevance_prompt),
        ("support", teacher_support_prompt), ("utility", teacher_utility_prompt),
        ("multi_retrieval", teacher_multi_retrieval_prompt))}
    rows = retrieved.rows()
    if not rows:
        raise DataError("judge: no instruction to judge")
    if cfg.teacher == "reference":
        check_gold(rows, ctx)
    jobs = judgment_rows(rows, cfg.top_n)
    asks = [messages(prompts[j["task"]], **j["fields"]) for j in jobs]
    labels = _teacher_labels(jobs, asks, teacher, cfg, ctx)
    judged = [{"id": f"{j['row']['id']}:{j['task']}:"
                     f"{j.get('tag') or (j.get('ctx') or {}).get('id', '')}",
               "task": j["task"], "instruction": a[-1]["content"], "input": "", "output": label,
               "messages": a + [{"role": "assistant", "content": label}]}
              for j, a, label in zip(jobs, asks, labels) if label is not None]
    train, dev = critic_rows(judged, random.Random(cfg.seed), cfg.dev_size)
    ctx.log.info("judge (%s): %d judgments, %d unreadable, %d dropped by the paper's rules "
                 "([Relevant] kept with probability 0.7, '### Response:' in the text), %d train "
                 "and %d dev rows", cfg.teacher, len(jobs), len(jobs) - len(judged),
                 len(judged) - len(train) - len(dev), len(train), len(dev))
    ctx.log.info("judge: labels %s", label_counts(judged))
    relevance = [r["output"] for r in judged if r["task"] == "relevance"]
    if cfg.teacher == "reference" and relevance and RELEVANT not in relevance:
        ctx.log.warning("judge: none of the %d retrieved passages judged is a gold passage: the "
                        "critic learns only [Irrelevant]; check that 'gold' holds ids of the "
                        "corpus's passages", len(relevance))
    if train and len(dev) > len(train) / 4:   # the paper: 1,500 of many thousand
        ctx.log.warning("judge: the dev split (dev_size %d) holds %d of the %d usable judgments "
                        "(%.0f%%), which the critic does not train on; lower "
                        "steps.%s.dev_size on data this small", cfg.dev_size, len(dev),
                        len(dev) + len(train), 100 * len(dev) / (len(dev) + len(train)), ctx.step)
    if dev and not train:
        raise ConfigError(f"steps.{ctx.step}.dev_size: the dev split ({cfg.dev_size}) takes all "
                          f"{len(dev)} usable judgments, leaving no training row for the critic",
                          hint=f"judge more instructions, or lower steps.{ctx.step}.dev_size "
                               f"below {len(dev)} (the paper takes 1500 of many thousand)")
    keep = ("id", "task", "messages")
    return CriticData([{k: r[k] for k in keep} for r in train], [{k: r[k] for k in keep} for r in dev])
