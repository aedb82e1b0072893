"""``rag show`` prints a metric as a person would read it: ``sum: 40.8``, not the binary noise
of a float sum (``40.800000000000004`` on Python 3.11; CLI audit of session 42, item 12i);
``--json`` keeps every digit written."""

from __future__ import annotations

import json

from tests.conftest import rag


def test_show_prints_metrics_without_float_noise(toy, capsys):
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "--no-progress", runs=runs) == 0
    (written,) = (runs / "latest" / "artifacts").glob("evaluate*/**/metrics.json")
    value = json.loads(written.read_text())["sum"]
    capsys.readouterr()
    assert rag("show", "evaluate", runs=runs) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  sum: 40.8" in lines, lines
    assert rag("show", "evaluate", "--json", runs=runs) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["sum"] == value
