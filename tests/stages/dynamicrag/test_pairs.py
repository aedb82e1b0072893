"""``dynamicrag.pairs`` called directly: generator and reranker preference pairs."""

from stages.dynamicrag.pairs import PairsConfig, pairs
from stages.dynamicrag.schemas import Scored
from stages.schemas import Preferences
from tests.stages.conftest import prompt_file
from tests.stages.dynamicrag.rows import trajectories_row


def test_pairs(env):
    table, written, ctx = env
    rows = []
    for qid, rewards in [("g", [0.9, 0.1]), ("eq", [0.5, 0.5]), ("r", [0.2, 0.8])]:
        row = trajectories_row(qid, ["Paris", "Lyon"], [[1], [2, 3]])
        row["rewards"] = rewards
        row["reward_parts"] = [{}, {}]
        rows.append(row)
    out = written(Preferences, pairs(table(Scored, rows), prompt_file("reranker"),
                                     prompt_file("generator"), PairsConfig(generator_cap=1),
                                     ctx("pairs")))
    assert [(r["id"], r["task"]) for r in out] == [("g", "generator"), ("r", "reranker")]
    assert out[0]["chosen"] == [{"role": "assistant", "content": "Paris"}]
    assert out[0]["rejected"] == [{"role": "assistant", "content": "Lyon"}]
    assert out[1]["chosen"][0]["content"] == "[2], [3]"
    assert out[1]["rejected"][0]["content"] == "[1]"
