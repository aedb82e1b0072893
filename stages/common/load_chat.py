"""Stage ``load_chat``: instruction data (Alpaca format) as ``Chat`` rows for joint SFT.

Seed step: DynamicRAG trains its SFT model on the reranker BC rows, the generator rows and the
Alpaca instruction data jointly (``alpaca_data_cleaned_system.json`` in LLaMA-Factory's
``llama8b.yaml``, SEEDS 1.3 step 8). Wire this stage's output into ``dynamicrag.convert``'s
``extra`` input; with no file wired (``data: null``) it outputs no rows, so a recipe can keep the
step and switch the data on with one override.

Records (JSON array, JSON lines, or Parquet as the Hugging Face Hub serves Alpaca) follow
LLaMA-Factory's Alpaca columns: ``instruction`` (the prompt), optional ``input`` (appended after a
newline, as LLaMA-Factory does), ``output`` (the answer), optional ``system``. Each becomes
``[system], user, assistant`` with ``task`` set to ``task`` (default ``alpaca``) and id
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
        raise DataError(f"{where}: expected an object with instruction and output, got "
                        f"{type(rec).__name__}")
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


@stage("load_chat", version=1)
def load_chat(cfg: LoadChatConfig, ctx: StageContext, data: File | None = None) -> Chat:
    """Chat rows from an Alpaca-format file; none when no file is wired."""
    from stages.lib.data.files import iter_records

    if data is None:
        ctx.log.info("no instruction data wired: no rows")
        return []
    rows = []
    unit, records = iter_records(data.path, "instruction records")
    for line_no, rec in records:
        rows.append({"id": f"{cfg.task}-{line_no}", "task": cfg.task,
                     "messages": alpaca_messages(rec, f"{data.path} {unit} {line_no}")})
        if cfg.max_rows is not None and len(rows) >= cfg.max_rows:
            break
    ctx.log.info("%d %s rows from %s", len(rows), cfg.task, data.path)
    return rows
