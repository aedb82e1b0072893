"""Export TRL conversational rows to LLaMA-Factory datasets (alpaca or sharegpt + dataset_info.json).

Inputs are TRL's conversational shapes, as in :class:`stages.schemas.Chat` and
:class:`stages.schemas.Preferences`:

- SFT: ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}``;
- preference: ``{"prompt": [...], "chosen": [assistant msg], "rejected": [assistant msg]}`` (or
  TRL's implicit form: ``chosen``/``rejected`` full conversations sharing the prompt).

Outputs follow LLaMA-Factory's ``data/README.md``: alpaca ``instruction/input/output/system/
history`` (preferences: ``chosen``/``rejected`` strings with ``"ranking": true``) or sharegpt
``conversations`` of ``{from, value}`` with ``system`` (preferences: ``chosen``/``rejected``
single ``{from: gpt}`` messages). :func:`write_llamafactory` writes ``{name}.jsonl`` and adds the
matching entry to ``dataset_info.json`` in the same folder, so ``dataset_dir: <that folder>`` and
``dataset: <name>`` is all a LLaMA-Factory YAML needs.

    >>> to_alpaca_sft({"messages": [{"role": "system", "content": "Be brief."},
    ...                             {"role": "user", "content": "Capital of France?"},
    ...                             {"role": "assistant", "content": "Paris"}]})
    {'instruction': 'Capital of France?', 'input': '', 'output': 'Paris', 'system': 'Be brief.', 'history': []}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from orchestrator.api import DataError
from stages.lib.chat import validate_messages

log = logging.getLogger(__name__)

KINDS = ("sft", "preference")
FORMATTINGS = ("alpaca", "sharegpt")
_KIND_ALIASES = {"dpo": "preference", "prefs": "preference", "preferences": "preference",
                 "ranking": "preference", "chat": "sft"}
SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "system": "system"}
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                 "assistant_tag": "gpt", "system_tag": "system"}


def _where(row: dict) -> str:
    return f"row {row.get('id')!r}" if row.get("id") is not None else "a row"


def _messages(row: dict, key: str) -> list[dict]:
    return validate_messages(row.get(key), _where(row), key)


def split_conversation(row: dict, messages: list[dict], ends_with: str) -> tuple[str, list, list]:
    """``messages`` → ``(system, turns, last)``: turns alternate user/assistant from a user turn.

    ``turns`` is the list of ``[user, assistant]`` pairs before the final turn(s); ``last`` is the
    final ``[user, assistant]`` pair (``ends_with="assistant"``) or ``[user]`` (``"user"``).

    >>> split_conversation({}, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
    ...                         {"role": "user", "content": "c"}], ends_with="user")
    ('', [['a', 'b']], ['c'])
    """
    system = ""
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    roles = [m["role"] for m in messages]
    expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(roles))]
    if not roles or roles != expected or roles[-1] != ends_with:
        raise DataError(f"{_where(row)}: messages must be [system], user, assistant, user, ... "
                        f"ending with {ends_with}; got roles {roles}")
    contents = [m["content"] for m in messages]
    cut = len(contents) - (2 if ends_with == "assistant" else 1)
    turns = [contents[i:i + 2] for i in range(0, cut, 2)]
    return system, turns, contents[cut:]


def _preference_parts(row: dict) -> tuple[list[dict], str, str]:
    """A preference row → (prompt messages, chosen text, rejected text)."""
    chosen, rejected = _messages(row, "chosen"), _messages(row, "rejected")
    if row.get("prompt"):
        prompt = _messages(row, "prompt")
    else:  # implicit prompt: chosen and rejected are whole conversations sharing it
        prompt = chosen[:-1]
        if rejected[:-1] != prompt:
            raise DataError(f"{_where(row)}: without 'prompt', chosen and rejected must share every "
                            "message but the last (TRL implicit-prompt preference format)")
        chosen, rejected = chosen[-1:], rejected[-1:]
    for key, msgs in (("chosen", chosen), ("rejected", rejected)):
        if len(msgs) != 1 or msgs[0]["role"] != "assistant":
            raise DataError(f"{_where(row)}: '{key}' must be one assistant message for LLaMA-Factory, "
                            f"got roles {[m['role'] for m in msgs]}")
    return prompt, chosen[0]["content"], rejected[0]["content"]


def to_alpaca_sft(row: dict) -> dict:
    """A TRL ``messages`` row → an alpaca record (earlier turns go to ``history``)."""
    system, history, (instruction, output) = split_conversation(row, _messages(row, "messages"),
                                                                "assistant")
    return {"instruction": instruction, "input": "", "output": output, "system": system,
            "history": history}


def to_alpaca_preference(row: dict) -> dict:
    """A TRL preference row → an alpaca ranking record with string ``chosen``/``rejected``.

    >>> to_alpaca_preference({"prompt": [{"role": "user", "content": "Q"}],
    ...                       "chosen": [{"role": "assistant", "content": "good"}],
    ...                       "rejected": [{"role": "assistant", "content": "bad"}]})
    {'instruction': 'Q', 'input': '', 'chosen': 'good', 'rejected': 'bad', 'system': '', 'history': []}
    """
    prompt, chosen, rejected = _preference_parts(row)
    system, history, (instruction,) = split_conversation(row, prompt, "user")
    return {"instruction": instruction, "input": "", "chosen": chosen, "rejected": rejected,
            "system": system, "history": history}


def _sharegpt_turns(messages: list[dict]) -> list[dict]:
    return [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in messages]


def to_sharegpt_sft(row: dict) -> dict:
    """A TRL ``messages`` row → ``{conversations: [{from, value}], system}``.

    >>> to_sharegpt_sft({"messages": [{"role": "user", "content": "hi"},
    ...                               {"role": "assistant", "content": "hello"}]})
    {'conversations': [{'from': 'human', 'value': 'hi'}, {'from': 'gpt', 'value': 'hello'}], 'system': ''}
    """
    messages = _messages(row, "messages")
    split_conversation(row, messages, "assistant")  # validates the role order
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    body = messages[1:] if messages[0]["role"] == "system" else messages
    return {"conversations": _sharegpt_turns(body), "system": system}


def to_sharegpt_preference(row: dict) -> dict:
    """A TRL preference row → sharegpt ranking: conversations end with the human turn."""
    prompt, chosen, rejected = _preference_parts(row)
    split_conversation(row, prompt, "user")
    system = prompt[0]["content"] if prompt[0]["role"] == "system" else ""
    body = prompt[1:] if prompt[0]["role"] == "system" else prompt
    return {"conversations": _sharegpt_turns(body),
            "chosen": {"from": "gpt", "value": chosen},
            "rejected": {"from": "gpt", "value": rejected}, "system": system}


def _kind(kind: str) -> str:
    k = _KIND_ALIASES.get(kind, kind)
    if k not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return k


def convert(rows: Iterable[dict], kind: str, formatting: str = "alpaca") -> list[dict]:
    """Convert TRL rows to LLaMA-Factory records (``kind``: sft | preference)."""
    kind = _kind(kind)
    if formatting not in FORMATTINGS:
        raise ValueError(f"formatting must be one of {FORMATTINGS}, got {formatting!r}")
    fn = {("sft", "alpaca"): to_alpaca_sft, ("preference", "alpaca"): to_alpaca_preference,
          ("sft", "sharegpt"): to_sharegpt_sft,
          ("preference", "sharegpt"): to_sharegpt_preference}[kind, formatting]
    records = [fn(r) for r in rows]
    # Drop optional columns nobody uses, so the files read like hand-written ones.
    for col in ("system", "history"):
        if records and col in records[0] and not any(r[col] for r in records):
            for r in records:
                del r[col]
    return records


def dataset_info_entry(file_name: str, kind: str, formatting: str = "alpaca",
                       columns_present: Iterable[str] = ("system",)) -> dict:
    """The ``dataset_info.json`` entry for a file written by :func:`convert`.

    >>> dataset_info_entry("rerank_dpo.jsonl", "preference", "alpaca", ["system"])
    {'file_name': 'rerank_dpo.jsonl', 'formatting': 'alpaca', 'ranking': True, 'columns': {'prompt': 'instruction', 'query': 'input', 'chosen': 'chosen', 'rejected': 'rejected', 'system': 'system'}}
    """
    kind = _kind(kind)
    present = set(columns_present)
    entry: dict = {"file_name": file_name, "formatting": formatting}
    if kind == "preference":
        entry["ranking"] = True
    if formatting == "alpaca":
        columns = {"prompt": "instruction", "query": "input"}
        columns.update({"chosen": "chosen", "rejected": "rejected"} if kind == "preference"
                       else {"response": "output"})
    else:
        columns = {"messages": "conversations"}
        if kind == "preference":
            columns.update({"chosen": "chosen", "rejected": "rejected"})
    columns.update({c: c for c in ("system", "history") if c in present})
    entry["columns"] = columns
    if formatting == "sharegpt":
        entry["tags"] = dict(SHAREGPT_TAGS)
    return entry


def write_llamafactory(out_dir: str | Path, name: str, rows: Iterable[dict], kind: str,
                       formatting: str = "alpaca") -> Path:
    """Write ``{out_dir}/{name}.jsonl`` and register it in ``{out_dir}/dataset_info.json``.

    An existing ``dataset_info.json`` is updated (other entries kept), so an SFT set and a
    preference set can share one ``dataset_dir``. Returns the data file's path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = convert(rows, kind, formatting)
    path = out / f"{name}.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    info_path = out / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    info[name] = dataset_info_entry(path.name, kind, formatting, records[0] if records else ())
    info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("wrote %d %s %s records to %s", len(records), formatting, _kind(kind), path)
    return path


__all__ = ["convert", "dataset_info_entry", "split_conversation", "to_alpaca_preference",
           "to_alpaca_sft", "to_sharegpt_preference", "to_sharegpt_sft", "write_llamafactory"]
