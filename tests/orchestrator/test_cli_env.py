"""``rag env``: the declared requirements against what is installed, the extras, the machine;
a core requirement missing or too old is exit 1 with the command that installs it."""

from __future__ import annotations

import json

from orchestrator.cli import env as env_cli
from tests.conftest import rag


def test_json_lists_every_requirement_and_the_machine(tmp_path, capsys):
    assert rag("env", "--json", "--runs-dir", str(tmp_path / "runs")) == 0
    info = json.loads(capsys.readouterr().out)
    core = {r["name"]: r for r in info["requirements"] if r["group"] == "core"}
    assert {"torch", "transformers", "trl", "pyarrow", "hydra-core"} <= set(core)
    assert all(r["ok"] for r in core.values())           # this test's own environment
    assert {r["group"] for r in info["requirements"]} >= {"core", "demo", "gpu", "ray"}
    assert info["cache"] == str(tmp_path / "runs" / "cache") or "RAGLINE_CACHE" in info["ragline_env"]
    assert info["cpus"] >= 1 and info["free_bytes"] > 0
    assert "rag = stages" in info["stages"]


def test_a_core_requirement_too_old_is_exit_1_with_what_to_install(monkeypatch, capsys):
    real = env_cli.installed_version
    monkeypatch.setattr(env_cli, "installed_version",
                        lambda name: "0.19.0" if name == "trl" else real(name))
    assert rag("env") == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "✗ trl 0.19.0, ragline needs trl>=1.9: pip install 'trl>=1.9'" in out


def test_an_incomplete_extra_names_what_it_lacks(monkeypatch, capsys):
    real = env_cli.installed_version
    monkeypatch.setattr(env_cli, "installed_version",
                        lambda name: None if name == "ray" else real(name))
    assert rag("env") == 0                                 # an extra is optional
    out = " ".join(capsys.readouterr().out.split())
    assert "lacks ray>=2.60: pip install -e '.[ray]'" in out


def test_executors_say_what_each_needs(monkeypatch):
    real = env_cli.installed_version
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(env_cli, "installed_version",
                        lambda name: {"ray": None, "submitit": "1.5.2"}.get(name, real(name)))
    assert env_cli.executors() == {
        "local": "ready", "ray": "needs ray: pip install -e '.[ray]'",
        "slurm": "submitit 1.5.2, but no sbatch on the PATH: run from a SLURM login node"}
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(env_cli, "installed_version", lambda name: "2.60.0" if name == "ray" else "1.5.2")
    assert env_cli.executors() == {"local": "ready", "ray": "ready (ray 2.60.0)",
                                   "slurm": "ready (submitit 1.5.2, /usr/bin/sbatch)"}
