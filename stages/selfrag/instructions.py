"""Instruction data in the seeds' shapes (Self-RAG's C0 step), as pure functions.

Task families: open QA (the question as it is), ARC/OBQA (options A–D after the stem), FEVER
(a claim to call true or false), ASQA (an ambiguous question wanting a long answer), and
instructions that need no retrieval at all. The wording of the task instructions is our own; a
user reproducing the paper gives its TASK_INST text through ``task_instructions``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from stages.lib.data.set_names import for_set

TASK_INSTRUCTIONS = {
    "arc": "Choose the best answer among the options A, B, C and D.",
    "obqa": "Choose the best answer among the options A, B, C and D.",
    "fever": "Is the following claim true or false? Answer true or false.",
    # PubHealth: the paper runs it as the fever task; its released file is health_claims_*.jsonl
    "pubhealth": "Is the following claim true or false? Answer true or false.",
    "health_claims": "Is the following claim true or false? Answer true or false.",
    "asqa": ("Answer the question. It may be ambiguous and have several correct answers; if so, "
             "give a long answer that covers each of them."),
}


def task_instruction(dataset: str, question: str, choices: Sequence[str] = (),
                     instructions: Mapping[str, str] = TASK_INSTRUCTIONS) -> str:
    """The instruction text for one item of a task family (open QA: the question itself).

    >>> task_instruction("arc", "Which is a metal?", ["wood", "iron", "glass", "salt"])
    'Choose the best answer among the options A, B, C and D.\\n\\n## Input:\\n\\nWhich is a metal?\\nA: wood\\nB: iron\\nC: glass\\nD: salt'
    >>> task_instruction("nq", "Who founded Velmora?")
    'Who founded Velmora?'

    A set named by its file (``arc_challenge_processed``) gets its family's instruction:

    >>> task_instruction("arc_challenge_processed", "Which?").startswith("Choose the best")
    True
    """
    head = for_set(instructions, dataset, None)
    body = question + "".join(f"\n{chr(65 + i)}: {c}" for i, c in enumerate(choices))
    return f"{head}\n\n## Input:\n\n{body}" if head else body


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
