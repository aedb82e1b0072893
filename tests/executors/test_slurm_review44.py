"""Review 44 of the SLURM changes: the job's time given through ``sbatch: {time: ...}``,
everywhere the executor uses it, and the qos warning said once and truly."""

from __future__ import annotations

import logging

from orchestrator.executors.slurm import pending_failure, sbatch_parameters
from tests.executors.test_slurm_review43 import _checker


def test_submitit_knows_the_time_sbatch_gives_the_job():
    """Finding 1: ``timeout_min`` came from ``time`` (default 1440) while the job ran for
    ``sbatch.time``; at the warning signal submitit took a job at its limit for a preempted one
    and requeued it, at every limit. Now both are the job's time, written once."""
    params = sbatch_parameters({"time": 1440, "sbatch": {"time": "2:00:00", "exclude": "n3"}},
                               "sft", 1, 0, 1)
    assert params["timeout_min"] == 120
    assert params["slurm_additional_parameters"] == {"exclude": "n3"}


def test_a_job_cancelled_for_its_time_names_the_setting_that_gave_it():
    """Finding 2a: it named ragline.executor.time=1440, which the user never set."""
    failure = pending_failure("PartitionTimeLimit", {"sbatch": {"time": "10:00:00"}})
    assert "(ragline.executor.sbatch.time=10:00:00); cancelled" in failure.message
    assert failure.hint.startswith("change ragline.executor.sbatch.time")


def test_the_qos_warning_says_what_happens_once(tmp_path, monkeypatch, caplog):
    """Findings 2b and 6: with a list of partitions a job pending for PartitionTimeLimit is
    waited for, not cancelled, as the warning promised; the warning came once per check (five
    times in one ``rag plan``)."""
    check = _checker(tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="ragline"):
        for _ in range(3):
            check(partition="gpu,cpu", qos="review44", time="1-00:00:00")
    assert caplog.text.count("qos 'review44' may allow it") == 1
    assert "partitions 'cpu,gpu' allow at most 240" in caplog.text   # sinfo's order
    assert "the jobs wait, pending for PartitionTimeLimit" in caplog.text
    assert "cancelled" not in caplog.text
