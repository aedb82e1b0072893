"""Stage ``load_chat``: instruction data (Alpaca, ShareGPT or chat messages) as ``Chat`` rows for
joint SFT.

Seed step: DynamicRAG trains its SFT model on the reranker BC rows, the generator rows and the
Alpaca instruction data jointly (``alpaca_data_cleaned_system.json`` in LLaMA-Factory's
``llama8b.yaml``, SEEDS 1.3 step 8). Wire this stage's output into ``dynamicrag.convert``'s
``extra`` input; with no file wired (``data: null``) it outputs no rows, so a recipe can keep the
step and switch the data on with one override.

Records (JSON array, JSON lines, Parquet as the Hugging Face Hub serves Alpaca, or a dataset's
``save_to_disk`` folder) are read record by record in one of three shapes:

* LLaMA-Factory's Alpaca columns: ``instruction`` (the prompt), optional ``input`` (appended
  after a newline, as LLaMA-Factory does), ``output`` (the answer), optional ``system``; each
  becomes ``[system], user, assistant``;
* LLaMA-Factory's ShareGPT: ``conversations`` of ``{from, value}`` turns (``human``/``user``,
  ``gpt``/``assistant``, ``system``), optional top-level ``system``;
* chat messages (TRL, OpenAI, most chat datasets on the Hub): ``messages`` of ``{role,
  content}``.

A multi-turn conversation trains on its last assistant turn, or on every assistant turn with
the SFT step's ``loss_on: assistant``. Rows get ``task`` (default ``alpaca``) and id
``<task>-<line>`` (``<task>-<row>`` for Parquet). ``max_rows`` keeps the first N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import DataError, File, StageContext, stage
from stages.schemas import Chat


@dataclass
class LoadChatConfig:
    task: str = "alpaca"                 # the rows' task name (shown in the SFT summary)
    max_rows: Annotated[int, Ge(1)] | None = None   # keep the first N records


def alpaca_messages(rec: object, where: str) -> list[dict]:
    """One Alpaca record as chat messages.

    >>> alpaca_messages({"instruction": "Add.", "input": "2+2", "output": "4"}, "f line 1")
    [{'role': 'user', 'content': 'Add.\\n2+2'}, {'role': 'assistant', 'content': '4'}]
    """
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected an object with instruction and output (or "
                        f"conversations, or messages), got {type(rec).__name__}")
    for key in ("instruction", "output"):
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            raise DataError(f"{where}: '{key}' must be a non-empty string (Alpaca format: "
                            "instruction, input, output, system); fix or remove the record")
    prompt = rec["instruction"]
    if isinstance(rec.get("input"), str) and rec["input"].strip():
        prompt = f"{prompt}\n{rec['input']}"
    out = [{"role": "system", "content": rec["system"]}] if rec.get("system") else []
    return out + [{"role": "user", "content": prompt},
                  {"role": "assistant", "content": rec["output"]}]


# ShareGPT speakers -> chat roles (LLaMA-Factory's sharegpt tags; its function_call and observation
# turns have no place in a plain chat row and are refused)
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system"}


def sharegpt_messages(rec: dict, where: str) -> list[dict]:
    """One ShareGPT record as chat messages.

    >>> turns = [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]
    >>> [(m["role"], m["content"]) for m in sharegpt_messages({"conversations": turns}, "f")]
    [('user', '2+2?'), ('assistant', '4')]
    """
    turns = rec["conversations"]
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{where}: 'conversations' must be a non-empty list of {{from, value}} "
                        "turns (ShareGPT format); fix or remove the record")
    out = [{"role": "system", "content": rec["system"]}] if rec.get("system") else []
    for j, turn in enumerate(turns):
        speaker = turn.get("from") if isinstance(turn, dict) else None
        if speaker not in SHAREGPT_ROLES or not isinstance(turn.get("value"), str):
            raise DataError(f"{where}: conversations[{j}] must be {{from, value}} with from one of "
                            f"{', '.join(SHAREGPT_ROLES)} and a string value (got "
                            f"{turn!r:.80}); fix or remove the record")
        out.append({"role": SHAREGPT_ROLES[speaker], "content": turn["value"]})
    return out


def record_messages(rec: object, where: str) -> list[dict]:
    """One record, in any of the three shapes (module doc), as chat messages ending with the
    assistant's answer."""
    from stages.lib.chat import validate_messages

    if isinstance(rec, dict) and "messages" in rec:
        out = validate_messages(rec["messages"], where, "messages")
    elif isinstance(rec, dict) and "conversations" in rec:
        out = sharegpt_messages(rec, where)
    else:
        return alpaca_messages(rec, where)
    if out[-1]["role"] != "assistant" or not out[-1]["content"].strip():
        raise DataError(f"{where}: the conversation must end with a non-empty assistant turn "
                        f"(it ends with {out[-1]['role']!r}); fix or remove the record")
    return out


@stage("load_chat", version=1)
def load_chat(cfg: LoadChatConfig, ctx: StageContext, data: File | None = None) -> Chat:
    """Chat rows from a file of instruction records; none when no file is wired."""
    from stages.lib.data.files import iter_records

    if data is None:
        ctx.log.info("no instruction data wired: no rows")
        return []
    rows = []
    unit, records = iter_records(data.path, "instruction records")
    for line_no, rec in records:
        rows.append({"id": f"{cfg.task}-{line_no}", "task": cfg.task,
                     "messages": record_messages(rec, f"{data.path} {unit} {line_no}")})
        if cfg.max_rows is not None and len(rows) >= cfg.max_rows:
            break
    ctx.log.info("%d %s rows from %s", len(rows), cfg.task, data.path)
    return rows
