"""DynamicRAG's own artifact types: behaviour-cloning targets, sampled trajectories and their
rewards. The shared QA types are in :mod:`stages.schemas`."""

from __future__ import annotations

import pyarrow as pa

from orchestrator.api import Table
from stages.lib.prompts import PromptFile
from stages.schemas import INT_LIST, QUESTION_FIELDS, RANKED_CTX

TRAJECTORY = pa.struct([("ids", INT_LIST), ("selection", pa.string()), ("response", pa.string())])


class BCTargets(Table):
    """DynamicRAG behaviour-cloning rows: a reranked question and its target id ``sequence``."""

    schema = pa.schema(QUESTION_FIELDS + [("ctxs", pa.list_(RANKED_CTX)),
                                          ("sequence", INT_LIST), ("sequence_length", pa.int32())])


class Trajectories(Table):
    """Sampled reranker trajectories per question, each with the generator's answer."""

    schema = pa.schema(QUESTION_FIELDS + [("ctxs", pa.list_(RANKED_CTX)),
                                          ("trajectories", pa.list_(TRAJECTORY))])


class Scored(Table):
    """Trajectories with one reward per trajectory and its components."""

    schema = pa.schema(QUESTION_FIELDS + [
        ("ctxs", pa.list_(RANKED_CTX)), ("trajectories", pa.list_(TRAJECTORY)),
        ("rewards", pa.list_(pa.float32())),
        ("reward_parts", pa.list_(pa.map_(pa.string(), pa.float32()))),
    ])


# ---------------------------------------------------------------- prompt files
# Each type names the placeholders its stage fills in the file's ``user`` template; ``rag plan``
# refuses any other, and a file whose ``user`` lacks one the type ``needs`` (those without which
# the stage's result is meaningless; stages/lib/prompts.py: PromptFile).


class RerankerPrompt(PromptFile):
    """The reranker's prompt: the question and the numbered candidate passages."""

    fills = ("question", "passages")
    needs = {"question": "the reranker never sees the question it selects passages for",
             "passages": "the reranker never sees the candidate passages it selects from"}
    without = {"passages": "to answer from the first k retrieved passages without a reranker, "
                           "evaluate with infer_topk (a GeneratorPrompt file)"}
    formats_passages = True


class JudgePrompt(PromptFile):
    """The reward's LLM judge: the question, the gold answers and the response to grade."""

    fills = ("question", "gold", "response")
    needs = {"response": "the judge never sees the response it grades"}
    without = {"response": "to score without an LLM judge, give the reward step weights.judge: 0 "
                           "and inputs.judge_prompt: null"}
