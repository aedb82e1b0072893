"""``dynamicrag.reward`` keeps every question's passages in Arrow (only its trajectories and
golds become Python values) and ``dynamicrag.pairs`` streams its scored questions: both held
every row as Python values (``bench/bench_dpo_data.py``). A handle that refuses ``rows()``
proves it; reward's written bytes are those of the rows it used to return, so a cached result
and a new one agree and nothing after it runs again."""

from __future__ import annotations

from orchestrator.artifacts import write_artifact
from stages.dynamicrag.pairs import PairsConfig, pairs
from stages.dynamicrag.reward import RewardConfig, reward
from stages.dynamicrag.schemas import Scored, Trajectories
from stages.schemas import Preferences
from tests.stages.conftest import prompt_file
from tests.stages.dynamicrag.rows import trajectories_row


class NoRows:
    """A mixin for a table handle whose rows may not all be turned into Python values."""

    def rows(self, columns=None):
        raise AssertionError("every row was read as Python values")


class NoRowsTrajectories(NoRows, Trajectories):
    pass


class NoRowsScored(NoRows, Scored):
    pass


ROWS = [trajectories_row("a", ["Paris", "Lyon"], [[1], [1, 2, 3]]),
        trajectories_row("b", ["Paris", "Paris"], [[1], [2]]),
        {**trajectories_row("c", ["Rome", "Paris is it"], [[], [2]]), "extra": [1, 2]}]


def test_reward_writes_the_bytes_of_the_rows_it_returned(env, tmp_path):
    table, written, ctx = env
    given = table(Trajectories, ROWS)
    out = reward(NoRowsTrajectories(given.ref), RewardConfig(), ctx("reward"))
    # what the stage returned before: each input row, as Python values, with its rewards
    as_rows = [{**row, "rewards": r, "reward_parts": p} for row, r, p in
               zip(given.rows(), out.column("rewards").to_pylist(),
                   [[dict(p) for p in parts] for parts in out.column("reward_parts").to_pylist()])]
    new = write_artifact(out, Scored, tmp_path / "new", "reward.default", "key")
    old = write_artifact(as_rows, Scored, tmp_path / "old", "reward.default", "key")
    assert new.content_hash == old.content_hash
    assert out.column_names[-1] == "extra" and out.column("rewards").to_pylist()[1] == [0, 0]


def test_pairs_streams_its_scored_questions(env):
    table, written, ctx = env
    rows = [{**trajectories_row(q, ["Paris", "Lyon"], [[1], [2, 3]]), "rewards": r,
             "reward_parts": [{}, {}]} for q, r in [("g", [0.9, 0.1]), ("r", [0.2, 0.8])]]
    out = written(Preferences, pairs(NoRowsScored(table(Scored, rows).ref), prompt_file("reranker"),
                                     prompt_file("generator"), PairsConfig(generator_cap=1),
                                     ctx("pairs")))
    assert [(r["id"], r["task"]) for r in out] == [("g", "generator"), ("r", "reranker")]


def test_a_shard_types_its_passed_through_columns_from_its_own_rows(env, tmp_path):
    """A shard (a row range) writes what the rows it returned before wrote: a column null in
    every row of the shard typed ``null`` there, a struct field null in every row kept (review
    45b, F1 and F2): the same content hash, so a recomputed shard changes nothing after it."""
    table, written, ctx = env
    rows = [{**row, "choices": ["x"] if i >= 2 else None, "meta": {"src": "wiki", "page": None}}
            for i, row in enumerate(ROWS + ROWS[:1])]
    given = table(Trajectories, rows)
    for start, stop in ((0, 2), (2, 4)):
        shard = Trajectories(given.ref, start, stop)
        out = reward(shard, RewardConfig(), ctx("reward"))
        as_rows = [{**row, "rewards": r, "reward_parts": [dict(p) for p in parts]} for row, r, parts
                   in zip(shard.rows(), out.column("rewards").to_pylist(),
                          out.column("reward_parts").to_pylist())]
        new = write_artifact(out, Scored, tmp_path / f"new{start}", "reward.default", "key")
        old = write_artifact(as_rows, Scored, tmp_path / f"old{start}", "reward.default", "key")
        assert new.content_hash == old.content_hash
