"""DynamicRAG prompts (SEEDS 1.4): one model, two roles, chat messages for both.

* the **reranker** (system :data:`RERANKER_SYSTEM`) reads a query and numbered passages and
  answers with the identifiers of the passages it needs, ``"[1], [3]"``, or ``"None"``;
* the **generator** (system :data:`GENERATOR_SYSTEM`) answers the query from the passages it is
  given, in the answer style of the dataset (:func:`answer_style`).

Fixes relative to the seed code:

* One passage format everywhere (:func:`format_docs`): ``"{i}. Topic: {title}\\nContent: {text}"``
  numbered 1..k in the order given. The seeds used "Topic:" for BC/SFT and "Title: {title}." with
  the *original* ids for DPO sampling and inference, so the model saw a different format at test
  time.
* One separator: ``"Query: {q}"`` + a blank line in training and inference (the seeds' inference
  used one newline).
* :func:`parse_selection` drops out-of-range and repeated ids instead of failing the whole item
  with an IndexError.

The system prompts are paraphrases of the papers' prompts, not copies.
"""

from __future__ import annotations

import re

RERANKER_SYSTEM = (
    "You are an expert at dynamically choosing document identifiers to answer a query.\n"
    "You will be given documents, each identified by a number in square brackets, "
    "such as [1], [2].\n"
    "Output only the identifiers of the documents that contain information needed to answer "
    "the query.\n"
    "Stop adding identifiers as soon as the documents you selected together are enough to "
    "answer the query.\n"
    'If no document is needed to answer the query, output "None".\n'
    'Write the identifiers as a comma-separated list, such as [1], [2], or write "None".\n'
    "Output only the identifiers, without explanations or any other text."
)
"""P1: the reranker's system prompt."""

GENERATOR_SYSTEM = (
    "You are an intelligent assistant that answers user queries accurately and concisely using "
    "retrieved knowledge. Follow these rules:\n"
    "1. Task:\n"
    "   - Answer using the Retrieved Content.\n"
    "   - If the Retrieved Content is None, answer from your own knowledge.\n"
    "   - If the information is insufficient or you do not know the answer, say: \"I cannot "
    "fully answer based on the available information. Please provide more details.\"\n"
    "2. Requirements:\n"
    "   - Accuracy: base the answer on the retrieved content.\n"
    "   - Conciseness: keep the answer short and relevant.\n"
    "   - Context awareness: make sure the answer addresses the user's query.\n"
    "3. Input format:\n"
    "   - Query: the user's query\n"
    "   - Retrieved Content: the retrieved documents\n"
    "4. Output format:\n"
    "   - A clear, well-structured answer to the query.\n"
    "Always put clarity and reliability first."
)
"""P2: the generator's system prompt."""

SHORT_PHRASE = "Please answer the question with a short phrase."
ANSWER_STYLES = {
    "fever": ('Please answer the question with "SUPPORTS", "REFUTES" or "NEI" '
              "based on what you know."),
    "eli5": "Please answer the question with a paragraph.",
    "arc": "Please answer the following question and output only the answer option.",
    "short_phrase": SHORT_PHRASE,
}
"""The answer-style ("remember") prompts. NQ, HotpotQA, TriviaQA (``tc``), ASQA, 2WikiMQA,
PopQA and unknown datasets all use the short-phrase style."""

_ARC = re.compile(r"(^|[^a-z])arc([^a-z]|$)")
_SELECTION_ID = re.compile(r"\[(\d+)\]")


def answer_style(dataset: str) -> str:
    """The answer-style prompt for a dataset name (or an id / file name that contains it).

    Matched case-insensitively by substring: ``fever`` and ``eli5``; ``arc`` only as a whole word
    (``arc_challenge`` yes, ``ms_marco``/``searchqa`` no). Everything else (nq, hotpotqa,
    tc/triviaqa, asqa, 2wikimqa, popqa, unknown) gets the short-phrase style.

    >>> answer_style("fever_dev")
    'Please answer the question with "SUPPORTS", "REFUTES" or "NEI" based on what you know.'
    >>> answer_style("ARC-Challenge") == ANSWER_STYLES["arc"]
    True
    >>> answer_style("ms_marco") == answer_style("nq") == SHORT_PHRASE
    True
    """
    name = (dataset or "").lower()
    if "fever" in name:
        return ANSWER_STYLES["fever"]
    if "eli5" in name:
        return ANSWER_STYLES["eli5"]
    if _ARC.search(name):
        return ANSWER_STYLES["arc"]
    return SHORT_PHRASE


def format_docs(docs: list[dict], ids: list[int] | None = None) -> str:
    """Passages as the "Retrieved Content" block, numbered 1..k in the order given.

    With ``ids`` (1-based positions into ``docs``) only those passages are shown, in that order
    and renumbered 1..k. No passage gives ``"Retrieved Content: None"``.

    >>> docs = [{"title": "A", "text": "a."}, {"title": "B", "text": "b."},
    ...         {"title": "C", "text": "c."}]
    >>> print(format_docs(docs, ids=[3, 1]))
    Retrieved Content:
    1. Topic: C
    Content: c.
    2. Topic: A
    Content: a.
    >>> format_docs([])
    'Retrieved Content: None'
    """
    if ids is not None:
        bad = [i for i in ids if not 1 <= i <= len(docs)]
        if bad:
            raise ValueError(f"passage ids {bad} out of range 1..{len(docs)}")
        docs = [docs[i - 1] for i in ids]
    if not docs:
        return "Retrieved Content: None"
    entries = [f"{i}. Topic: {d.get('title') or ''}\nContent: {d.get('text') or ''}"
               for i, d in enumerate(docs, start=1)]
    return "Retrieved Content:\n" + "\n".join(entries)


def reranker_messages(question: str, docs: list[dict]) -> list[dict]:
    """Chat messages asking the reranker which of ``docs`` it needs.

    >>> m = reranker_messages("who?", [{"title": "A", "text": "a."}])
    >>> [x["role"] for x in m], m[1]["content"]
    (['system', 'user'], 'Query: who?\\n\\nRetrieved Content:\\n1. Topic: A\\nContent: a.')
    """
    return [{"role": "system", "content": RERANKER_SYSTEM},
            {"role": "user", "content": f"Query: {question}\n\n{format_docs(docs)}"}]


def generator_messages(question: str, docs: list[dict], dataset: str) -> list[dict]:
    """Chat messages asking the generator to answer from ``docs`` in the dataset's style.

    >>> generator_messages("who?", [], "nq")[1]["content"]
    'Please answer the question with a short phrase.\\nQuery: who?\\n\\nRetrieved Content: None'
    """
    user = f"{answer_style(dataset)}\nQuery: {question}\n\n{format_docs(docs)}"
    return [{"role": "system", "content": GENERATOR_SYSTEM},
            {"role": "user", "content": user}]


def parse_selection(text: str, num_docs: int) -> list[int]:
    """Passage ids in a reranker output: ``[k]`` in order, first occurrence kept, 1..num_docs only.

    >>> parse_selection("[3], [1], [3], [9], [0]", num_docs=5)
    [3, 1]
    >>> parse_selection("None", num_docs=5), parse_selection("doc 2", num_docs=5)
    ([], [])
    """
    ids: list[int] = []
    for match in _SELECTION_ID.finditer(text or ""):
        k = int(match.group(1))
        if 1 <= k <= num_docs and k not in ids:
            ids.append(k)
    return ids


def format_selection(ids: list[int]) -> str:
    """A reranker target: ``"[1], [3]"``, or ``"None"`` for no passage.

    >>> format_selection([1, 3]), format_selection([])
    ('[1], [3]', 'None')
    """
    return ", ".join(f"[{i}]" for i in ids) if ids else "None"
