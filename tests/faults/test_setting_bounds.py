"""``rag plan`` refuses sizes and probabilities no step can use, before anything runs.

These settings had no bounds (an error-message audit). The worst gave no error at all: a
negative batch or chunk size made an empty ``range``, so ``index`` wrote all-zero embeddings,
``retrieve`` returned the first passages with score 0.0 for every question, ``rerank`` scored
every passage 0.0 and ``dynamicrag.sample`` sampled nothing, each reported as done; and as
these settings are left out of the cache key, the wrong result stayed cached after the setting
was fixed. A zero failed mid-step with ``range() arg 3 must not be zero``, counted as a crash;
``top_p: 2`` failed after the generator was prepared, naming no setting; a negative
``dev_size`` left the critic 5 training rows; a negative seed stopped training in numpy.
"""

from __future__ import annotations

import pytest

from tests.conftest import REPO, plan_checker

CASES = [
    ("dynamicrag_demo", "steps.index.batch_size=-4", "steps.index.batch_size", ">= 1", "-4"),
    ("dynamicrag_demo", "steps.index.chunk_rows=0", "steps.index.chunk_rows", ">= 1", "0"),
    ("dynamicrag_demo", "steps.retrieve_eval.batch_size=-4", "steps.retrieve_eval.batch_size",
     ">= 1", "-4"),
    ("dynamicrag_demo", "steps.rerank.batch_size=0", "steps.rerank.batch_size", ">= 1", "0"),
    ("dynamicrag_demo", "steps.sample.batch_size=-1", "steps.sample.batch_size", ">= 1", "-1"),
    ("dynamicrag_demo", "steps.reward.judge_max_unscored=1.5",
     "steps.reward.judge_max_unscored", "<= 1", "1.5"),
    ("selfrag_demo", "steps.judge.dev_size=-5", "steps.judge.dev_size", ">= 0", "-5"),
    ("selfrag_demo", "steps.judge.top_n=0", "steps.judge.top_n", ">= 1", "0"),
    ("selfrag_demo", "steps.label.top_n=-1", "steps.label.top_n", ">= 1", "-1"),
    ("selfrag_demo", "steps.label.max_tokens=0", "steps.label.max_tokens", ">= 1", "0"),
    ("selfrag_demo", "steps.split.max_tokens=0", "steps.split.max_tokens", ">= 1", "0"),
    ("selfrag_demo", "steps.instructions.no_retrieval=-3", "steps.instructions.no_retrieval",
     ">= 0", "-3"),
    ("reinforced_ir_demo", "steps.synthesize.top_p=2", "steps.synthesize.top_p", "<= 1", "2"),
    ("reinforced_ir_demo", "steps.synthesize.top_p=0", "steps.synthesize.top_p", "> 0", "0"),
    ("reinforced_ir_demo", "repeat.round.steps.augment.top_p=1.5",
     "repeat.round.steps.augment.top_p (step augment_1)", "<= 1", "1.5"),
    ("reinforced_ir_demo", "+encoder.batch_size=-1", "steps.eval_base.encoder.batch_size", ">= 1",
     "-1"),
    # numpy refuses a negative seed (HF's set_seed: mid-training)
    ("dynamicrag_demo", "steps.sft.seed=-1", "steps.sft.seed", ">= 0", "-1"),
    ("selfrag_demo", "steps.judge.seed=-2", "steps.judge.seed", ">= 0", "-2"),
    ("reinforced_ir_demo", "repeat.round.steps.retriever.temperature=0",
     "repeat.round.steps.retriever.temperature (step retriever_1)", "> 0", "0"),
]


@pytest.mark.parametrize("recipe, override, key, bound, got", CASES,
                         ids=[c[1] for c in CASES])
def test_a_setting_out_of_range_is_refused_by_the_plan(tmp_path, monkeypatch, capsys, recipe,
                                                        override, key, bound, got):
    plan = plan_checker(str(REPO / "conf" / f"{recipe}.yaml"), tmp_path, monkeypatch, capsys)
    code, out = plan(override)
    assert code == 2, out
    assert key in out and f"expected a value {bound}" in out and f"got {got}" in out, out
