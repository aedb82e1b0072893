"""A shard checks, after its stage, the parts of its ``shard_by`` input that hold its rows, not
every shard's part (each of 256 shards read every one of 256 entries, before and after its
stage). A stage that changes a part it did not read is caught by the shard that reads it."""

from __future__ import annotations

from tests.conftest import rag
from tests.faults.faultkit import recipe, status

SHARDS = """ragline:
  imports: [tests.toy.stages, tests.faults.toy_faults]
  executor: {name: local, isolate: never}      # the shards one after the other, in order
steps:
  gen: {stage: toy_gen, n: 8}
  split: {stage: toy_map, inputs: {numbers: gen}, shards: 2}
  rewrite: {stage: fault_rewrite_last_part, inputs: {numbers: split}, shards: 2}
"""


def test_a_part_changed_by_another_shard_fails_the_shard_that_reads_it(toy, capsys):
    runs = toy / "runs"
    assert rag("run", str(recipe(toy, SHARDS)), runs=runs) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "rewrite[0/2]" not in err
    assert "✗ rewrite[1/2] failed: step 'rewrite' (stage 'fault_rewrite_last_part'): its input " \
           "'numbers' changed while the step ran" in err
    assert status(runs)["steps"]["rewrite"]["state"] == "failed"
