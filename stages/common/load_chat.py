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
  after a newline, as LLaMA-Factory does), ``output`` (the answer), optional ``system`` and
  ``history`` (earlier ``[instruction, output]`` pairs); each becomes ``[system], [user,
  assistant for each pair of the history], user, assistant``;
* LLaMA-Factory's ShareGPT: ``conversations`` of ``{from, value}`` turns (``human``/``user``,
  ``gpt``/``assistant``, ``system``), optional top-level ``system``;
* chat messages (TRL, OpenAI, most chat datasets on the Hub): ``messages`` of ``{role,
  content}``.

A multi-turn conversation trains on its last assistant turn, or on every assistant turn with
the SFT step's ``loss_on: assistant``. Rows get ``task`` (default ``alpaca``) and id
``<task>-<line>`` (``<task>-<row>`` for Parquet, ``<task>-<element>`` for a JSON array).
``max_rows`` keeps the first N. A field the record's shape does not read is dropped, and one
warning names each such field with the number of records that had it.
"""

from __future__ import annotations

from collections import Counter
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
    """One Alpaca record as chat messages, its ``history`` pairs as the turns before the last
    (as LLaMA-Factory's alpaca format reads them).

    >>> alpaca_messages({"instruction": "Add.", "input": "2+2", "output": "4"}, "f line 1")
    [{'role': 'user', 'content': 'Add.\\n2+2'}, {'role': 'assistant', 'content': '4'}]
    >>> rec = {"instruction": "And 3+3?", "output": "6", "history": [["2+2?", "4"]]}
    >>> [(m["role"], m["content"]) for m in alpaca_messages(rec, "f line 1")]
    [('user', '2+2?'), ('assistant', '4'), ('user', 'And 3+3?'), ('assistant', '6')]
    """
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected an object with instruction and output (or "
                        f"conversations, or messages), got {type(rec).__name__}")
    for key in ("instruction", "output"):
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            raise DataError(f"{where}: '{key}' must be a non-empty string (Alpaca format: "
                            "instruction, input, output, system, history); fix or remove the "
                            "record")
    prompt, extra = rec["instruction"], optional_string(rec, "input", where)
    if extra.strip():
        prompt = f"{prompt}\n{extra}"
    system = optional_string(rec, "system", where)
    out = [{"role": "system", "content": system}] if system else []
    return out + alpaca_history(rec.get("history"), where) + [
        {"role": "user", "content": prompt}, {"role": "assistant", "content": rec["output"]}]


def optional_string(rec: dict, key: str, where: str) -> str:
    """``rec[key]``, ``""`` when it is absent or null; any other non-string is refused (it was
    dropped without a word: an ``input`` of 5 lost the 5).

    >>> optional_string({"input": "2+2"}, "input", "f line 1"), optional_string({}, "system", "f")
    ('2+2', '')
    """
    value = rec.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: '{key}' must be a string, got {type(value).__name__} "
                        f"({value!r:.60}); write it as a string, or remove it")
    return value


def alpaca_history(history: object, where: str) -> list[dict]:
    """An Alpaca ``history`` (``[instruction, output]`` pairs, oldest first) as alternating user
    and assistant messages; absent or null is none.

    >>> alpaca_history([["Hi", "Hello."]], "f line 1")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello.'}]
    """
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise DataError(f"{where}: 'history' must be a list of [instruction, output] pairs "
                        f"(Alpaca format), got {type(history).__name__}; fix or remove it")
    out = []
    for j, pair in enumerate(history):
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(turn, str) for turn in pair)):
            raise DataError(f"{where}: history[{j}] must be a pair of strings [instruction, "
                            f"output] (got {pair!r:.80}); fix or remove the record")
        out += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    return out


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
    system = optional_string(rec, "system", where)
    out = [{"role": "system", "content": system}] if system else []
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


# The fields each record shape reads (module doc); any other is named in one warning
READ_KEYS = {"messages": ("messages",), "conversations": ("conversations", "system"),
             "alpaca": ("instruction", "input", "output", "system", "history")}


def unread_keys(rec: object) -> list[str]:
    """The fields of a record that its shape does not read, so would drop without a word.

    >>> unread_keys({"instruction": "x", "output": "y", "text": "### Instruction: x"})
    ['text']
    >>> unread_keys({"messages": [], "system": "Be brief."})
    ['system']
    """
    if not isinstance(rec, dict):
        return []
    shape = next((key for key in ("messages", "conversations") if key in rec), "alpaca")
    return [key for key in rec if key not in READ_KEYS[shape]]


# 2: Alpaca history becomes the turns before the last (it was dropped); a JSON array's rows are
# numbered by element (a one-line array gave every row the id <task>-1)
@stage("load_chat", version=2)
def load_chat(cfg: LoadChatConfig, ctx: StageContext, data: File | None = None) -> Chat:
    """Chat rows from a file of instruction records; none when no file is wired."""
    from stages.lib.data.files import iter_records, json_array

    if data is None:
        ctx.log.info("no instruction data wired: no rows")
        return []
    rows, unread = [], Counter()
    unit, records = iter_records(data.path, "instruction records")
    array = json_array(data.path)
    for index, (line_no, rec) in enumerate(records, 1):
        # every element of a one-line array is on line 1: number an array's rows by element
        where = f"{data.path} {unit} {line_no}" + (f", element {index}" if array else "")
        rows.append({"id": f"{cfg.task}-{index if array else line_no}", "task": cfg.task,
                     "messages": record_messages(rec, where)})
        unread.update(unread_keys(rec))
        if cfg.max_rows is not None and len(rows) >= cfg.max_rows:
            break
    if unread:
        listed = ", ".join(f"{key} (in {n} of {len(rows)} records)"
                           for key, n in sorted(unread.items()))
        ctx.log.warning("%s: field(s) not read, dropped: %s; a record is read as Alpaca "
                        "(instruction, input, output, system, history), ShareGPT (conversations, "
                        "system) or chat messages (messages): rename a field that holds part of "
                        "the conversation", data.path, listed)
    ctx.log.info("%d %s rows from %s", len(rows), cfg.task, data.path)
    return rows
