"""LLM-bound stages whose rows are independent give the same rows sharded as unsharded.

A tiny recipe runs through the orchestrator's own sharding (row ranges split by the runner, one
task per shard, parts gathered in order) with ``shards: 1`` and ``shards: 2``, in this process
(``isolate: never``) so the teacher can be a fake endpoint, and the gathered tables are compared
row for row. The fake teacher's reply depends on the request's seed, so a seed taken from
a row's position in its shard, not in the whole table, would change the second shard's rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.api import StageContext
from stages.rag_instruct.schemas import Exemplars
from stages.rag_instruct.synthesize import SynthesizeConfig, synthesize
from tests.conftest import REPO, rag
from tests.stages.conftest import fake_endpoint, prompt_file

PARADIGMS = ("useless_doc", "single_doc_support", "multi_doc_support", "single_doc_answer",
             "multi_doc_answer")

SYNTHESIZE = """ragline:
  executor: {{name: local, isolate: never}}
sources:
  exemplar_file: {exemplars}
{prompts}
steps:
  exemplars: {{stage: rag_instruct.exemplars, inputs: {{released: exemplar_file}}}}
  synthesize:
    stage: rag_instruct.synthesize
    inputs: {{exemplars: exemplars, {wires}}}
    shards: 1
    teacher: llm
    llm: {{model: fake-teacher, api_key_env: null}}
    max_attempts: 3
"""


def gathered_rows(runs: Path, name: str) -> list[dict]:
    """All rows of the latest run's table ``name`` (``step.output``), shards in order."""
    link = runs / "latest" / "artifacts" / name       # sharded: a folder of shard-0000k links
    parts = sorted(link.glob("*.parquet")) + sorted(link.glob("shard-*/*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts]).to_pylist()


def teacher(conversation: list[dict], params: dict) -> str:
    """A reply that depends on the request alone, its seed included: exemplars that say NOJSON
    get no JSON; others get none under about a third of the seeds (asked again with the next)."""
    text = conversation[-1]["content"]
    digest = hashlib.sha256(f"{params['seed']}|{text}".encode()).hexdigest()
    if "NOJSON" in text or int(digest, 16) % 3 == 0:
        return "I cannot write JSON."
    return json.dumps({"q*": f"seed {params['seed']}: {digest[:12]}", "a*": digest[12:20]})


def test_rag_instruct_synthesize_two_shards_give_the_unsharded_rows(tmp_path, monkeypatch):
    # the first half never gives JSON: a shard with nothing usable is not an error
    exemplars = [{"example_question": f"{'NOJSON' if i < 4 else 'Where is'} {i}?",
                  "task": PARADIGMS[i % 5], "source": "test",
                  "context": [{"id": f"d{i}{j}", "title": f"T{j}", "text": f"text {i} {j}"}
                              for j in range(3)]} for i in range(8)]
    (tmp_path / "exemplars.json").write_text(json.dumps(exemplars))
    recipe = tmp_path / "synthesize.yaml"
    recipe.write_text(SYNTHESIZE.format(
        exemplars=tmp_path / "exemplars.json",
        prompts="\n".join(f"  {p}_prompt: {REPO}/conf/prompts/rag_instruct/{p}.yaml"
                          for p in PARADIGMS),
        wires=", ".join(f"{p}_prompt: {p}_prompt" for p in PARADIGMS)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "runs" / "cache"))
    fake_endpoint(monkeypatch, teacher)

    out = {}
    for shards in (1, 2):
        assert rag("run", str(recipe), f"steps.synthesize.shards={shards}", "--no-progress",
                   runs=tmp_path / "runs") == 0
        status = json.loads((tmp_path / "runs" / "latest" / "status.json").read_text())
        assert status["steps"]["synthesize"]["shards"] == shards
        out[shards] = gathered_rows(tmp_path / "runs", "synthesize.out")
    assert [r["id"] for r in out[1]] == ["ex4-syn", "ex5-syn", "ex6-syn", "ex7-syn"]
    assert any(not r["question"].startswith("seed 0:") for r in out[1])   # a retry kept
    assert out[2] == out[1]


def test_a_shard_without_gold_answers_writes_no_rows_with_a_warning(env, tmp_path, caplog):
    """Unsharded, the reference teacher on exemplars without a gold answer is an error
    (tests/stages/rag_instruct/test_data_stages.py); one shard of several is not."""
    table, _, _ = env
    row = {"id": "a", "dataset": "s", "question": "Where is a?", "answers": [], "gold": [],
           "paradigm": "useless_doc", "docs": [{"id": "d1", "title": "T", "text": "x",
                                                "score": 1.0}]}
    ctx = StageContext("synthesize", 1, 2, tmp_path / "work", tmp_path / "scratch",
                       logging.getLogger("test.synthesize"))
    prompts = {f"{p}_prompt": prompt_file(p, "rag_instruct") for p in PARADIGMS}
    with caplog.at_level(logging.WARNING):
        assert synthesize(table(Exemplars, [row]), **prompts,
                          cfg=SynthesizeConfig(teacher="reference"), ctx=ctx) == []
    assert ("teacher 'reference' needs exemplars with gold answers, and none has one in shard "
            "2 of 2; it writes no rows") in caplog.text

