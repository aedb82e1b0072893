"""``rag cp``: a shipped recipe copied into a folder of one's own composes and plans there (the
groups and prompts it does not find next to it come from the shipped conf/); with
``--with-files`` its prompts are copied too and the copy reads those; nothing is overwritten
without ``--force``."""

from __future__ import annotations

from orchestrator.locate import locate_source
from tests.conftest import REPO, rag

SHIPPED = REPO / "conf" / "dynamicrag_demo.yaml"


def _out(capsys) -> str:
    captured = capsys.readouterr()
    return (captured.out + captured.err).replace("\n", " ")


def test_a_copied_recipe_composes_and_plans_in_a_folder_of_ones_own(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)
    assert rag("cp", "dynamicrag_demo") == 0
    copy = tmp_path / "dynamicrag_demo.yaml"
    first, _, rest = copy.read_text().partition("\n")
    assert first.startswith(f"# copied from {SHIPPED} by rag cp") and rest == SHIPPED.read_text()
    assert "next: rag plan dynamicrag_demo.yaml" in _out(capsys)
    assert rag("plan", "dynamicrag_demo.yaml", runs=tmp_path / "runs") == 0
    out = _out(capsys)
    assert "32 to run" in out and "using the shipped" not in out   # the copy, not the original
    assert (f"4 sources not in the current directory ({tmp_path}), read from the shipped "
            f"project {REPO}: 'reranker_prompt', 'generator_prompt', 'judge_prompt', "
            "'rag_prompt'") in out


def test_with_files_the_copy_reads_its_own_prompts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert rag("cp", "dynamicrag_demo", "mine.yaml", "--with-files") == 0
    prompts = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("prompts/**/*.yaml"))
    assert prompts == ["conf/prompts/common/rag.yaml",
                       *(f"conf/prompts/dynamicrag/{n}.yaml" for n in ("generator", "judge",
                                                                      "reranker"))]
    assert (tmp_path / prompts[0]).read_text() == (REPO / prompts[0]).read_text()
    (tmp_path / prompts[0]).write_text("edited")   # again, over the copies: from the shipped ones
    assert rag("cp", "dynamicrag_demo", "mine.yaml", "--with-files", "--force") == 0
    assert (tmp_path / prompts[0]).read_text() == (REPO / prompts[0]).read_text()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")   # from elsewhere, the prompts beside the copy
    found, _ = locate_source("conf/prompts/common/rag.yaml", tmp_path / "mine.yaml")
    assert found == tmp_path / "conf/prompts/common/rag.yaml"
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert rag("plan", "mine.yaml", runs=tmp_path / "runs") == 0
    assert "read from the shipped project" not in _out(capsys)


def test_a_config_or_group_of_ones_own_wins_over_the_shipped_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert rag("cp", "dynamicrag_demo") == 0
    (tmp_path / "executor").mkdir()
    (tmp_path / "executor" / "local.yaml").write_text(
        "# @package ragline.executor\nname: local\nisolate: never\nmax_parallel: 1\n")
    copy = tmp_path / "dynamicrag_demo.yaml"
    copy.write_text(copy.read_text().replace("\n  k: 5\n", "\n  k: 7\n"))   # retrieval.k
    capsys.readouterr()
    assert rag("config", "dynamicrag_demo.yaml", "--key", "ragline.executor.isolate") == 0
    assert capsys.readouterr().out == "never\n"
    assert rag("config", "dynamicrag_demo.yaml", "--key", "retrieval.k") == 0
    assert capsys.readouterr().out == "7\n"
    assert rag("config", "dynamicrag_demo.yaml", "executor=ray", "--key",
               "ragline.executor.name") == 0   # an option only the shipped group has
    assert capsys.readouterr().out == "ray\n"


def test_nothing_is_overwritten_without_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine.yaml"
    mine.write_text("steps: {}\n")
    assert rag("cp", "dynamicrag_demo", "mine.yaml") == 2
    assert "error: rag cp: would overwrite mine.yaml" in _out(capsys)
    assert mine.read_text() == "steps: {}\n"
    assert rag("cp", "dynamicrag_demo", "mine.yaml", "--force") == 0
    assert mine.read_text().partition("\n")[2] == SHIPPED.read_text()
    assert rag("cp", "dynamicrag_demo", "mine.txt") == 2
    assert "destination 'mine.txt' is neither a folder nor a .yaml file" in _out(capsys)
    (tmp_path / "NOTES").write_text("x")
    assert rag("cp", "dynamicrag_demo", "NOTES") == 2      # a file, not a folder to copy into
    assert "destination 'NOTES' is neither a folder nor a .yaml file" in _out(capsys)
    assert rag("cp", "dynamicrag_demo", "NOTES/x.yaml") == 2
    assert "error: rag cp: cannot write NOTES" in _out(capsys)
    assert rag("cp", "dynamicrag_dmeo") == 2
    assert "recipe 'dynamicrag_dmeo' not found (did you mean 'dynamicrag_demo'?)" in _out(capsys)


def test_a_copy_into_a_folder_keeps_the_name_and_a_copy_of_a_copy_one_header(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert rag("cp", "selfrag_demo", "experiments") == 0
    copy = tmp_path / "experiments" / "selfrag_demo.yaml"
    assert rag("cp", str(copy), "again.yaml") == 0
    text = (tmp_path / "again.yaml").read_text()
    assert text.count("# copied from") == 1 and text.startswith(f"# copied from {copy}")
