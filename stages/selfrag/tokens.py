"""The reflection-token vocabulary (13 tokens) plus the paragraph markup: the 15 special tokens
the generator's tokenizer gains.

>>> len(REFLECTION_TOKENS), len(SPECIAL_TOKENS)
(13, 15)
"""

from __future__ import annotations

RETRIEVAL = "[Retrieval]"
NO_RETRIEVAL = "[No Retrieval]"
CONTINUE = "[Continue to Use Evidence]"
RELEVANT = "[Relevant]"
IRRELEVANT = "[Irrelevant]"
FULLY = "[Fully supported]"
PARTIALLY = "[Partially supported]"
NO_SUPPORT = "[No support / Contradictory]"
UTILITY = tuple(f"[Utility:{i}]" for i in range(1, 6))
PARAGRAPH_OPEN = "<paragraph>"
PARAGRAPH_CLOSE = "</paragraph>"

RETRIEVE_TOKENS = (RETRIEVAL, NO_RETRIEVAL, CONTINUE)
RELEVANCE_TOKENS = (RELEVANT, IRRELEVANT)
SUPPORT_TOKENS = (FULLY, PARTIALLY, NO_SUPPORT)
REFLECTION_TOKENS = RETRIEVE_TOKENS + RELEVANCE_TOKENS + SUPPORT_TOKENS + UTILITY
SPECIAL_TOKENS = REFLECTION_TOKENS + (PARAGRAPH_OPEN, PARAGRAPH_CLOSE)


def strip_reflection(text: str, keep_lines: bool = False) -> str:
    """The answer a reader sees: reflection tokens, markup and end-of-text marks removed, spaces
    tidied (the seed's ``postprocess``; paragraphs' content stays, as there). ``keep_lines``
    keeps the line breaks (spaces are tidied within each line), as the seed's ``postprocess``
    does: long-form answers need them, since ALCE scores an output's first line only.

    >>> strip_reflection("[Retrieval]<paragraph>Doc</paragraph>[Relevant]Paris.[Fully supported][Utility:5]</s>")
    'DocParis.'
    >>> strip_reflection("[No Retrieval] The  answer is 4. ")
    'The answer is 4.'
    >>> strip_reflection("[No Retrieval] Paris  is big.\\nMore. ", keep_lines=True)
    'Paris is big.\\nMore.'
    """
    for token in SPECIAL_TOKENS + ("</s>", "<unk>", "<|endoftext|>"):
        text = text.replace(token, "")
    if keep_lines:
        return "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()
    return " ".join(text.split())
