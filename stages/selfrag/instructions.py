"""Instruction data in the seeds' shapes (Self-RAG's C0 step), as pure functions.

Task families: open QA (the question as it is), ARC/OBQA (options A–D after the stem), FEVER
(a claim to call true or false), ASQA (an ambiguous question wanting a long answer), and
instructions that need no retrieval at all. The task instructions' wording is a file
(``conf/prompts/selfrag/task_instructions.yaml``, :func:`read_task_instructions`): ours ships;
a user reproducing the paper gives its TASK_INST text as their own file.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from stages.lib.data.set_names import for_set


def read_task_instructions(path: str | Path) -> dict[str, str]:
    """The task instructions file at ``path``: set-name words mapped to the instruction text;
    a one-line ``ConfigError`` naming the file (and the key) otherwise."""
    from orchestrator.api import ConfigError
    from stages.lib.yaml_file import read_yaml

    hint = "see conf/prompts/selfrag/task_instructions.yaml"
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"task instructions file {path}: not found", hint=hint)
    data = read_yaml(p, "task instructions file", hint)
    if not isinstance(data, dict):
        raise ConfigError(f"task instructions file {path}: expected a mapping of task family "
                          f"(a set's name) to its instruction, got {type(data).__name__}",
                          hint=hint)
    for key, text in data.items():
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"task instructions file {path}: '{key}' must be a non-empty "
                              f"string (its instruction), got {text!r}", hint=hint)
    return {str(k): v for k, v in data.items()}


INPUT_MARK = "## Input:\n\n"
"""What ends a task instruction in the seed's data (``TASK_INST[task] + "## Input:\\n\\n" +
item``, ``data_creation/process_data/*.py``) and in ours (after a blank line)."""


def task_instruction(dataset: str, question: str, choices: Sequence[str],
                     instructions: Mapping[str, str]) -> str:
    """The instruction text for one item of a task family (open QA: the question itself).

    >>> arc = {"arc": "Pick one."}
    >>> task_instruction("arc", "Which is a metal?", ["wood", "iron", "glass", "salt"], arc)
    'Pick one.\\n\\n## Input:\\n\\nWhich is a metal?\\nA: wood\\nB: iron\\nC: glass\\nD: salt'
    >>> task_instruction("nq", "Who founded Velmora?", [], arc)
    'Who founded Velmora?'

    A set named by its file (``arc_challenge_processed``) gets its family's instruction:

    >>> task_instruction("arc_challenge_processed", "Which?", [], arc).startswith("Pick one.")
    True

    An instruction that already carries a task instruction (the seed's own data, whose
    ``instruction`` is ``TASK_INST + "## Input:\\n\\n" + item``) gets no second one:

    >>> task_instruction("arc_easy", "Choose.## Input:\\n\\nWhich is a metal?\\nA: wood", [], arc)
    'Choose.## Input:\\n\\nWhich is a metal?\\nA: wood'
    """
    body = question + "".join(f"\n{chr(65 + i)}: {c}" for i, c in enumerate(choices))
    if INPUT_MARK in question:
        return body
    head = for_set(instructions, dataset, None)
    return f"{head}\n\n{INPUT_MARK}{body}" if head else body


def no_retrieval_items(n: int, seed: int) -> list[dict]:
    """``n`` instructions any model can answer without documents (arithmetic, spelling,
    counting), with their outputs: the items a retrieval decision should learn to skip.

    >>> [(r["question"], r["answers"]) for r in no_retrieval_items(2, 0)]
    [('What is 51 plus 99?', ['150']), ('Write the word "silver" backwards.', ['revlis'])]
    """
    rng = random.Random(seed)
    words = ["river", "bridge", "garden", "window", "candle", "forest", "silver", "planet"]
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            q, ans = f"What is {a} plus {b}?", str(a + b)
        elif kind == 1:
            w = rng.choice(words)
            q, ans = f'Write the word "{w}" backwards.', w[::-1]
        else:
            w = rng.choice(words)
            q, ans = f'How many letters are in the word "{w}"?', str(len(w))
        out.append({"id": f"nr{i}", "dataset": "no_retrieval", "question": q, "answers": [ans],
                    "gold": []})
    return out
