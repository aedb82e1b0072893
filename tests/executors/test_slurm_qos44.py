"""A QOS may let a job run past its partition's MaxTime (``Flags=PartitionTimeLimit``), which
only ``sacctmgr`` can tell: with a ``qos`` set, a ``time`` over MaxTime is a warning, not a
refusal before any step (executor audit 43, left: such a user could not run at all). Without
one it is still refused, and a ``time`` given through ``sbatch: {time: ...}``, the value the job
gets, is the one checked (it was not checked)."""

from __future__ import annotations

import logging

import pytest

from orchestrator.errors import ConfigError
from tests.executors.test_slurm_review43 import _checker


def test_a_qos_may_run_past_maxtime(tmp_path, monkeypatch, caplog):
    check = _checker(tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="ragline"):
        check(partition="gpu", qos="long", time="1-00:00:00")
        check(partition="gpu", sbatch={"qos": "long", "time": "10:00:00"})
    assert caplog.text.count("(its MaxTime); going on, as qos 'long' may allow it") == 2
    with pytest.raises(ConfigError, match=r"^ragline.executor.time: 1440 minutes asked for, "
                                          r"but partition 'gpu' allows at most 240") as e:
        check(partition="gpu", time="1-00:00:00")
    assert "set a qos that may run longer" in e.value.hint


def test_the_time_sbatch_gives_the_job_is_the_one_checked(tmp_path, monkeypatch):
    check = _checker(tmp_path, monkeypatch)
    check(partition="gpu", time="1-00:00:00", sbatch={"time": "2:00:00"})   # the job's: 120
    with pytest.raises(ConfigError, match=r"^ragline.executor.sbatch.time: 600 minutes") as e:
        check(partition="gpu", sbatch={"time": "10:00:00"})
    assert e.value.hint.startswith("lower it: ragline.executor.sbatch.time=240")
