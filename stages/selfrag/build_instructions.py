"""Stage ``selfrag.instructions``: the instruction data Self-RAG's critic and generator learn from
(C0), as ``Questions`` rows: ``question`` is the instruction, ``answers[0]`` its output.

Questions from the loaded data keep their gold passage ids (the reference teacher needs them);
``no_retrieval`` extra instructions that need no documents (arithmetic, spelling, counting) are
mixed in, so a retrieval decision has something to learn and evaluation can show a retrieval
frequency strictly between 0 and 1; their ids are ``nr0``, ``nr1``, ..., and a loaded question
with one of those ids is refused (rows are matched by id downstream). Task families with options
or claims (ARC, OBQA, FEVER, ASQA; a set matches by name as everywhere: ``arc_challenge_processed``
is ARC) get their task instruction in front, as the ``task_instructions`` file words it
(:mod:`stages.selfrag.instructions`), unless the instruction already carries one: the seed's own
instruction data (``{instruction, output, input, topic, id, dataset_name}``, ``instruction`` =
its task instruction + ``"## Input:\n\n"`` + the item) is taken as it is. A row's other
columns are kept: the passages an evaluation set ships (``ctxs``) are then read as shipped by
``retrieve``, and ASQA's references reach ``selfrag.evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import DataError, StageContext, stage
from stages.schemas import Questions
from stages.selfrag.schemas import TaskInstructions


@dataclass
class InstructionsConfig:
    no_retrieval: Annotated[int, Ge(0)] = 0  # extra instructions that need no documents
    seed: Annotated[int, Ge(0)] = 0


# 3: the task instructions from a file
# 4: an instruction that already holds "## Input:\n\n" (the seed's data) gets no second one
@stage("selfrag.instructions", version=4)
def instructions(questions: Questions, task_instructions: TaskInstructions,
                 cfg: InstructionsConfig, ctx: StageContext) -> Questions:
    """Instruction rows (the loaded questions in their task format, plus no-retrieval items)."""
    from stages.selfrag.instructions import no_retrieval_items, task_instruction

    heads = task_instructions.load()
    rows = []
    for r in questions.rows():
        choices = r.get("choices") or []
        # every other column passes through: shipped ``ctxs`` (read as shipped, as the paper's
        # evaluation does), ASQA's ``qa_pairs`` / ``long_answers`` (its ALCE metrics)
        rows.append({**r, "question": task_instruction(r.get("dataset") or "", r["question"],
                                                       choices, heads)})
    extra = no_retrieval_items(cfg.no_retrieval, cfg.seed)
    taken = {r["id"] for r in rows} & {r["id"] for r in extra}
    if taken:   # label and evaluation match rows by id: a shared one would mix two items
        raise DataError(f"step '{ctx.step}': question id {sorted(taken)[0]!r} of the loaded data "
                        f"is also the id of a generated no-retrieval instruction (nr0 to "
                        f"nr{cfg.no_retrieval - 1}); give that question another id in its file, "
                        f"or set steps.{ctx.step}.no_retrieval: 0")
    ctx.log.info("instructions: %d from the data, %d that need no retrieval", len(rows), len(extra))
    return rows + extra
