"""Loss mask of a generator training example (Self-RAG's G8 step).

Labels are the input ids with the prompt masked (−100). Inside the target, the tokens strictly
between a ``<paragraph>`` token and the next ``</paragraph>`` are masked too: the model learns
to *emit* the markup and to judge the passage, never to reproduce retrieved text. The markup
tokens themselves stay supervised. (The seed paired each ``<paragraph>`` with the *last*
``</paragraph>`` after it, which masks the sentences between two paragraphs as well when a
target holds several; pairing each with the next closing token is what the paper describes.)
An example whose labels are all masked teaches nothing and is dropped by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

IGNORE = -100


def paragraph_labels(input_ids: Sequence[int], prompt_len: int, open_id: int,
                     close_id: int) -> list[int]:
    """Labels for one tokenised example.

    >>> # prompt [1, 2] | target: 7 <p>=5 8 9 </p>=6 10 <p>=5 11 </p>=6 12
    >>> paragraph_labels([1, 2, 7, 5, 8, 9, 6, 10, 5, 11, 6, 12], 2, open_id=5, close_id=6)
    [-100, -100, 7, 5, -100, -100, 6, 10, 5, -100, 6, 12]
    """
    labels = [IGNORE] * prompt_len + list(input_ids[prompt_len:])
    inside = False
    for i in range(prompt_len, len(labels)):
        token = input_ids[i]
        if token == open_id:
            inside = True
        elif token == close_id:
            inside = False
        elif inside:
            labels[i] = IGNORE
    return labels


def all_masked(labels: Sequence[int]) -> bool:
    """True when no label is supervised.

    >>> all_masked([-100, -100]), all_masked([-100, 4])
    (True, False)
    """
    return all(label == IGNORE for label in labels)
