"""``rag_instruct.contexts`` turns only the passages noise is drawn from (ranks ``noise_from``
on) into Python values, a row group at a time (memory audit 44: the paper's 250 passages for
40,000 questions took about 22 GB; at 3,000 questions here 1,421 MiB, now 888), with the same
examples as before: the draw is the same whether the ranking is cut first or not."""

from __future__ import annotations

import random

from orchestrator.artifacts import Table
from stages.rag_instruct.contexts import ContextsConfig, contexts, noise_candidates
from stages.rag_instruct.noise import training_documents
from stages.rag_instruct.schemas import Grounded, Synthesized
from stages.schemas import Retrieved
from tests.stages.rag_instruct.test_data_stages import doc, synthesized


def test_only_the_noise_ranks_are_read_and_the_draw_is_the_same(env, monkeypatch):
    table, written, ctx = env
    syn = [synthesized(q, [f"d{n}"]) for n, q in enumerate("abcdef")]
    ranked = [{"id": r["id"], "dataset": "synthkb", "question": "q", "answers": ["x"],
               "gold": [], "ctxs": [doc(i) for i in range(30 + n)]} for n, r in enumerate(syn)]
    retrieved = table(Retrieved, ranked)
    tails, most = noise_candidates(retrieved, 20)
    assert most == 35 and [len(tails[q]) for q in "abcdef"] == [10, 11, 12, 13, 14, 15]

    def whole(*args, **kwargs):
        raise AssertionError("the retrieved table was read whole as Python rows")

    monkeypatch.setattr(Table, "rows", whole)
    cfg = ContextsConfig(n_docs=5, noise_from=20, seed=7)
    grounded = contexts(table(Synthesized, syn), retrieved, cfg, ctx("contexts"))
    monkeypatch.undo()
    out = written(Grounded, grounded)
    assert len(out) == len(syn)
    rng = random.Random(7)     # the draw over the whole ranking, as the seed step made it
    for row, example, full in zip(out, syn, ranked):
        expected = training_documents(example["docs"], full["ctxs"], 5, 20, rng, True)
        assert [d["id"] for d in row["ctxs"]] == [d["id"] for d in expected]
