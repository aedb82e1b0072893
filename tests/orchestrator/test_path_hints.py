"""A path override the shell did not expand (data audit of session 43, finding 10): bash leaves
``~`` alone after ``data.corpus=``, and Hydra refused it with "token recognition error at '~'"
and a hint about commas; a ``$VAR`` in a path read "does not exist" with no word that ragline
expands ``${oc.env:VAR}``, not ``$VAR``."""

from __future__ import annotations

from tests.conftest import rag

RECIPE = """ragline: {imports: [tests.toy.stages]}
data: {numbers: null}
sources: {numbers: "${data.numbers}"}
steps:
  load: {stage: toy_gen, inputs: {path: numbers}}
"""


def _plan(tmp_path, monkeypatch, capsys, override: str) -> tuple[int, str]:
    (tmp_path / "r.yaml").write_text(RECIPE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    code = rag("plan", str(tmp_path / "r.yaml"), override, runs=tmp_path / "runs")
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_an_unquoted_tilde_says_to_quote_it(tmp_path, monkeypatch, capsys):
    code, out = _plan(tmp_path, monkeypatch, capsys, "data.numbers=~/n.txt")
    assert code == 2
    assert ("override 'data.numbers=~/n.txt': not a valid value (a '~' must be quoted: "
            "\"data.numbers='~/n.txt'\"; a path's ~ is then your home folder)") in out


def test_a_dollar_in_a_missing_path_points_at_oc_env(tmp_path, monkeypatch, capsys):
    code, out = _plan(tmp_path, monkeypatch, capsys, "data.numbers='$DATA/n.txt'")
    assert "source 'numbers': $DATA/n.txt does not exist" in out, out
    assert "a $ is not expanded in a path: write ${oc.env:NAME}" in out
