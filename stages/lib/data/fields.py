"""Fields under names the readers do not know, mapped by the recipe, as LLaMA-Factory's dataset
``columns`` map them: the load step's ``question_fields: {question: content, answers: label}``
reads BERGEN's question files, ``passage_fields: {text: content}`` its corpus.

A mapping is ``{name the reader takes: name in the file}``. The file's field moves to the
reader's name; a field the file already has under that name gives way (it is dropped), so the
mapping decides, whatever else the record holds.
"""

from __future__ import annotations

from typing import Any, Literal

from orchestrator.api import DataError

# what question_fields may map: the fields the question readers take under their first name
QuestionField = Literal["id", "question", "answers", "gold", "ctxs", "dataset",
                        "retrieved_question", "choices", "context", "instruction"]
# what passage_fields may map
PassageField = Literal["id", "title", "text"]


def renamed(rec: Any, fields: dict[str, str]) -> Any:
    """``rec`` with each mapped field under the reader's name (a record that is no object, or
    that lacks a mapped field, is left for the reader to explain).

    >>> renamed({"id": 1, "content": "Who?", "label": ["Al"], "question": "old"},
    ...         {"question": "content", "answers": "label"})
    {'id': 1, 'question': 'Who?', 'answers': ['Al']}
    """
    if not fields or not isinstance(rec, dict):
        return rec
    out = {k: v for k, v in rec.items() if k not in fields and k not in fields.values()}
    out.update({name: rec[src] for name, src in fields.items() if src in rec})
    return out


def visible_columns(names: list[str], fields: dict[str, str]) -> list[str]:
    """A table's column ``names`` as the reader sees them under the mapping.

    >>> visible_columns(["id", "content", "text"], {"text": "content"})
    ['id', 'text']
    """
    reader_name = {src: name for name, src in fields.items()}
    return [reader_name.get(n, n) for n in names if n in reader_name or n not in fields]


def file_column(name: str, fields: dict[str, str]) -> str:
    """The file's column behind the reader's ``name``.

    >>> file_column("text", {"text": "content"}), file_column("id", {"text": "content"})
    ('content', 'id')
    """
    return fields.get(name, name)


def check_mapped(rec: Any, fields: dict[str, str], needed: tuple[str, ...], where: str,
                 setting: str) -> None:
    """Refuse a record without the field that ``fields`` names for one of the ``needed`` reader
    names: the mapping, more likely than the record, is wrong, and the reader's own message
    ("missing field 'question'") would not say so.

    >>> check_mapped({"id": 1, "body": "x"}, {"text": "content"}, ("text",), "c.jsonl line 1",
    ...              "passage_fields")
    Traceback (most recent call last):
    ...
    orchestrator.errors.DataError: c.jsonl line 1: no field 'content', which the load step's passage_fields maps text to (the record has id, body); fix the mapping or the record
    """
    for name in needed:
        if isinstance(rec, dict) and name in fields and fields[name] not in rec:
            raise DataError(f"{where}: no field '{fields[name]}', which the load step's "
                            f"{setting} maps {name} to (the record has "
                            f"{', '.join(map(str, rec))}); fix the mapping or the record")
