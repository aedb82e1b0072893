"""Question-answering prompts shared by recipes: passages as a numbered "Retrieved Content"
block, an answer style per dataset, and the generator's chat messages (SEEDS 1.4, the generator
role).

* the **generator** (system :data:`GENERATOR_SYSTEM`) answers the query from the passages it is
  given, in the answer style of the dataset (:func:`answer_style`);
* one passage format everywhere (:func:`format_docs`): ``"{i}. Topic: {title}\\nContent: {text}"``
  numbered 1..k in the order given, and one separator (``"Query: {q}"`` + a blank line) in
  training and inference. The DynamicRAG seeds used "Topic:" for BC/SFT and "Title: {title}."
  with the *original* ids for DPO sampling and inference, so the model saw a different format at
  test time.

The system prompt is a paraphrase of the paper's prompt, not a copy.
"""

from __future__ import annotations

import re

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


def generator_messages(question: str, docs: list[dict], dataset: str) -> list[dict]:
    """Chat messages asking the generator to answer from ``docs`` in the dataset's style.

    >>> generator_messages("who?", [], "nq")[1]["content"]
    'Please answer the question with a short phrase.\\nQuery: who?\\n\\nRetrieved Content: None'
    """
    user = f"{answer_style(dataset)}\nQuery: {question}\n\n{format_docs(docs)}"
    return [{"role": "system", "content": GENERATOR_SYSTEM},
            {"role": "user", "content": user}]


PASSAGE_FIELDS = ("id", "title", "text", "score")


def passage_fields(doc: dict) -> dict:
    """A retrieved passage reduced to the fields a prediction keeps.

    >>> passage_fields({"id": "d1", "title": "A", "text": "a.", "score": 0.5, "relevant": True})
    {'id': 'd1', 'title': 'A', 'text': 'a.', 'score': 0.5}
    """
    return {k: doc.get(k) for k in PASSAGE_FIELDS}
