"""``rag verify`` named the step of an entry whose ``_entry.json`` is damaged as '?' (its
outputs' manifests name the producer): ``DAMAGED step '?' (4d740760b35d): damaged metadata``."""

from __future__ import annotations

from tests.conftest import rag
from tests.faults.faultkit import entry_dir, recipe


def test_a_damaged_entry_json_is_named_by_its_manifests_step(toy, capsys):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    gen = entry_dir(runs, "gen")
    (gen / "_entry.json").write_text("{broken")
    capsys.readouterr()
    assert rag("verify", "--all", "--quarantine", "--runs-dir", str(runs)) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"DAMAGED step 'gen' ({gen.name[:12]}): damaged metadata" in out, out
    notes = list((runs / "cache" / "quarantine").glob(f"{gen.name}.*/*.json"))
    assert any('"step": "gen"' in n.read_text() for n in notes), notes
