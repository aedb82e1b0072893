"""RAG-Instruct's own artifact types. Synthesised examples are ordinary questions (``gold``
holds their source documents' ids), so the shared ``retrieve`` stage reads them as they are."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from orchestrator.api import File, Table
from stages.lib.prompts import PromptFile
from stages.schemas import CTX, QUESTION_FIELDS

_PARADIGM = [("paradigm", pa.string())]


class Exemplars(Table):
    """Exemplar instructions, each with its paradigm and source documents ``docs`` (D*);
    ``answers``/``gold`` are the exemplar's own (the ``reference`` teacher reads them)."""

    schema = pa.schema(QUESTION_FIELDS + _PARADIGM + [("docs", pa.list_(CTX))])


class Synthesized(Table):
    """Synthesised examples: ``question`` q*, ``answers`` [a*], ``gold`` the ids of ``docs``
    (D*), ``example`` the exemplar instruction q* imitates."""

    schema = pa.schema(QUESTION_FIELDS + _PARADIGM + [("example", pa.string()),
                                                      ("docs", pa.list_(CTX))])


class Grounded(Table):
    """Training examples with the documents they are trained with (``ctxs``: D* and noise)."""

    schema = pa.schema(QUESTION_FIELDS + [("ctxs", pa.list_(CTX))] + _PARADIGM)


# ---------------------------------------------------------------- prompt files
# Each type names the placeholders its stage fills in the file's ``user`` template; ``rag plan``
# refuses any other, and a file whose ``user`` lacks one the type ``needs`` (those without which
# the stage's result is meaningless; stages/lib/prompts.py: PromptFile).


class SynthesisPrompt(PromptFile):
    """A paradigm's synthesis prompt: the rendered documents and an exemplar question."""

    fills = ("documents", "example")
    needs = {"documents": "the teacher never sees the documents the synthesized q* and a* must "
                          "be grounded in"}


class WrapperFile(File):
    """The training wrappers (``conf/prompts/rag_instruct/wrappers.yaml``): ``rag plan`` reads
    and checks the file before any step runs (keys, each template's placeholders), so a typo
    stops the run at once, not after synthesis and retrieval (``wrappers.load_wrappers``)."""

    @classmethod
    def check_source(cls, path: Path) -> None:
        from stages.rag_instruct.wrappers import load_wrappers

        load_wrappers(path)
