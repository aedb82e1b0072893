"""Artifact types shared by the RAG recipes: pyarrow schemas for tables, kinds for directories.

The canonical QA record (DESIGN.md) is one row per question::

    {id, dataset, question, answers: [str], gold: [doc id], ctxs: [{id, title, text, score}]}

Later stages add columns (``trajectories``, ``prediction``) or struct fields inside ``ctxs``
(``relevant``, ``rerank_score``). A consumer accepts any producer whose schema has at least the
consumer's columns and struct fields with equal types, so a reranked table feeds anything that
wants a retrieved one. A recipe's own types live in its package (``stages/dynamicrag/schemas.py``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from orchestrator.api import Directory, File, Metrics, Table
from stages.lib.prompts import PromptFile

STR_LIST = pa.list_(pa.string())
INT_LIST = pa.list_(pa.int32())
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
CTX = pa.struct([("id", pa.string()), ("title", pa.string()), ("text", pa.string()),
                 ("score", pa.float32())])
RANKED_CTX = pa.struct([("id", pa.string()), ("title", pa.string()), ("text", pa.string()),
                        ("score", pa.float32()), ("relevant", pa.bool_()),
                        ("rerank_score", pa.float32())])
QUESTION_FIELDS = [("id", pa.string()), ("dataset", pa.string()), ("question", pa.string()),
                   ("answers", STR_LIST), ("gold", STR_LIST)]



class Passages(Table):
    """The corpus: one passage per row."""

    schema = pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])


class Questions(Table):
    """Questions with gold answers and, where known, gold passage ids."""

    schema = pa.schema(QUESTION_FIELDS)


class Retrieved(Table):
    """Questions with their retrieved passages in rank order (``ctxs[i].score`` kept)."""

    schema = pa.schema(QUESTION_FIELDS + [("ctxs", pa.list_(CTX))])


class Reranked(Table):
    """Retrieved passages with an expert relevance label and score per passage."""

    schema = pa.schema(QUESTION_FIELDS + [("ctxs", pa.list_(RANKED_CTX))])


class Chat(Table):
    """Conversational training examples (TRL's ``messages`` format); ``task`` names the role."""

    schema = pa.schema([("id", pa.string()), ("task", pa.string()), ("messages", MESSAGES)])


class Preferences(Table):
    """Preference pairs in TRL's conversational format; ``task`` is generator or reranker."""

    schema = pa.schema([("id", pa.string()), ("task", pa.string()), ("prompt", MESSAGES),
                        ("chosen", MESSAGES), ("rejected", MESSAGES)])


class Predictions(Table):
    """Answers for evaluation questions, with the passages the model selected."""

    schema = pa.schema(QUESTION_FIELDS + [("ctxs", pa.list_(CTX)), ("selected", INT_LIST),
                                          ("selection", pa.string()), ("prediction", pa.string())])


class PerQuestion(Table):
    """Per-question scores of an evaluation: one column per metric."""

    schema = pa.schema([("id", pa.string()), ("prediction", pa.string())])


class Model(Directory):
    """A Hugging Face checkpoint directory (``config.json``, weights, tokenizer).

    A model given as a recipe source is checked by ``rag plan`` before any step runs: a file, a
    folder without ``config.json`` (a hub cache's root, a GGUF download) or without tokenizer
    files is one line naming the path (``stages.lib.models.checkpoint``). Which kind of model a
    step needs is checked when its loader runs."""

    @classmethod
    def check_source(cls, path: Path) -> None:
        from stages.lib.models.checkpoint import read_checkpoint

        read_checkpoint(path, "a model checkpoint (a directory with config.json and tokenizer "
                              "files)")


class OneFile(File):
    """One file, never a folder (a qrels file, a list of ids): ``rag plan`` refuses a folder
    given as its source before any step runs, naming what the folder holds, where the stage
    would only have failed once it ran.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "test.tsv").write_text("q1\\tp1\\t1\\n") and None
    >>> OneFile.check_source(folder)
    Traceback (most recent call last):
    ...
    orchestrator.errors.ConfigError: ... is a folder, expected one file (it holds test.tsv); \
point the source at the file itself
    """

    @classmethod
    def check_source(cls, path: Path) -> None:
        from orchestrator.api import ConfigError

        if path.is_dir():
            held = sorted(p.name for p in path.iterdir())
            listed = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise ConfigError(f"{path} is a folder, expected one file"
                              + (f" (it holds {listed})" if held else " (an empty one)")
                              + "; point the source at the file itself")


class QuestionFile(File):
    """A question file or folder (``load_data``'s train and eval): a set without a ``dataset``
    field is named after its file, or its folder for a file named after a split
    (``hotpotqa/train.jsonl``), so those names are part of the step's key: the same bytes
    renamed are read again, under their new set name.

    >>> QuestionFile.key_names(Path("data/arc_challenge.jsonl"))
    ['arc_challenge']
    >>> QuestionFile.key_names(Path("data/hotpotqa/train.jsonl"))
    ['train', 'hotpotqa']
    """

    @classmethod
    def key_names(cls, path: Path) -> list[str]:
        from stages.lib.data.questions import SPLIT_NAMES

        stem = path.name.split(".")[0]
        return [stem, path.parent.name] if stem.lower() in SPLIT_NAMES else [stem]


class Embeddings(Directory):
    """A dense index: per shard ``emb.npy`` (float16/32, row-aligned) and ``ids.txt``, plus ``meta.json``."""


class EvalMetrics(Metrics):
    """Named aggregate metrics of one evaluation."""


# ---------------------------------------------------------------- prompt files
# Each type names the placeholders its stage fills in the file's ``user`` template; ``rag plan``
# refuses any other, and a file whose ``user`` lacks one the type ``needs`` (those without which
# the stage's result is meaningless; stages/lib/prompts.py: PromptFile).


class GeneratorPrompt(PromptFile):
    """A generator's answer prompt (``generator_messages``): the question, the passages shown,
    and the dataset's answer style from the file's ``styles``."""

    fills = ("question", "passages", "style")
    needs = {"question": "the generator never sees the question it answers",
             "passages": "the generator never sees the retrieved passages (training and "
                         "evaluation would measure a closed-book model)"}
    without = {"passages": "for a no-retrieval (closed-book) baseline keep {passages} and give "
                           "infer_topk k: 0: {passages} is then the file's no_passages text "
                           "(empty without that key)"}
    formats_passages = True


class RelevancePrompt(PromptFile):
    """A pointwise relevance prompt (``rerank`` with an LLM): one question and one passage."""

    fills = ("question", "passage")
    needs = {"question": "the LLM never sees the question it judges the passage for",
             "passage": "the LLM never sees the passage it judges"}
    without = {name: "to label passages without an LLM, give rerank method: monot5, "
                     "cross_encoder or has_answer and inputs.prompt: null"
               for name in ("question", "passage")}
