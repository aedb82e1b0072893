"""Rendering the source documents for the synthesis prompt, and reading the LLM's reply
(SEEDS 4.3 step 3)."""

from __future__ import annotations

import json
import re


def render_documents(docs: list[dict]) -> str:
    """The documents as the seed's synthesis prompt lists them: ``[i]: text``, from 0.

    >>> print(render_documents([{"text": "Velmora is a town."}, {"text": "It has a mill."}]))
    [0]: Velmora is a town.
    [1]: It has a mill.
    """
    return "\n".join(f"[{i}]: {d['text']}" for i, d in enumerate(docs))


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_reply(text: str) -> tuple[str, str] | None:
    """``(q*, a*)`` from the LLM's reply, or None when it holds no such JSON object.

    As the seed: a reply that does not start with ``{`` is cut to its outermost ``{...}``
    before parsing. ``a*`` may be a number (kept as its text); a question or answer that is
    empty, or not text, makes the reply unusable (the seed kept whatever came back, which its
    trainer then dropped as a non-string).

    >>> parse_reply('Sure! {"q*": "Who founded Velmora?", "a*": "Ardan Velsh"} Done.')
    ('Who founded Velmora?', 'Ardan Velsh')
    >>> parse_reply('{"q*": "How long is the river?", "a*": 1270}')
    ('How long is the river?', '1270')
    >>> parse_reply('Question: who? Answer: me') is None, parse_reply('{"q*": ""}') is None
    (True, True)
    """
    body = text.strip()
    if not body.startswith("{"):
        match = _OBJECT.search(body)
        if match is None:
            return None
        body = match.group(0)
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    question, answer = value.get("q*"), value.get("a*")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not (isinstance(question, str) and isinstance(answer, str)):
        return None
    if not question.strip() or not answer.strip():
        return None
    return question.strip(), answer.strip()
