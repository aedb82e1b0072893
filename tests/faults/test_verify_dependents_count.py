"""After ``rag verify --quarantine`` moved the entries computed from a damaged one, the next
``rag verify`` counted them all as "found damaged" (a review of af63d0f): their own bytes were
intact. They are counted apart now."""

from __future__ import annotations

from tests.conftest import rag
from tests.faults.faultkit import entry_dir, flip_byte, recipe

PART = "outputs/out/part-00000.parquet"
CHAIN3 = """ragline:
  imports: [tests.toy.stages]
steps:
  gen: {stage: toy_gen, n: 8}
  mul: {stage: toy_map, inputs: {numbers: gen}}
  total: {stage: toy_sum, inputs: {numbers: mul}}
"""


def test_entries_moved_with_a_damaged_one_are_not_called_damaged(toy, capsys):
    runs, conf = toy / "runs", recipe(toy, CHAIN3)
    assert rag("run", str(conf), runs=runs) == 0
    flip_byte(entry_dir(runs, "gen") / PART, 4)
    assert rag("verify", "--quarantine", "--runs-dir", str(runs)) == 1
    capsys.readouterr()
    assert rag("verify", "--runs-dir", str(runs)) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("0 intact, 0 damaged, 3 in quarantine (1 found damaged, 2 computed from it; the "
            "next run recomputes them)") in out, out
