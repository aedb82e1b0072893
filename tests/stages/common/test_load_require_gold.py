"""``load_data``'s ``require_gold``: a set the recipe scores against gold passage ids (the
Reinforced-IR recipes' evaluation queries) is refused at ``load`` when none of its questions has
one; it was refused only at the evaluate steps, after every training branch had run."""

from __future__ import annotations

import json

import pytest

from orchestrator.api import DataError
from stages.common.load import LoadConfig, load_data
from stages.lib.data.synth import make_synthkb, write_synthkb
from tests.stages.common.test_load import file


def test_a_set_without_gold_ids_is_refused_where_the_recipe_needs_them(env, tmp_path):
    _, _, ctx = env
    paths = write_synthkb(tmp_path / "kb", make_synthkb(0, 8, 2, 10, 4), corpus_format="flashrag")
    rows = [json.loads(line) for line in paths["eval"].read_text().splitlines()]
    bare = tmp_path / "eval_nogold.jsonl"
    bare.write_text("".join(json.dumps({**r, "gold": []}) + "\n" for r in rows))
    inputs = dict(corpus=file(paths["corpus"]), eval=file(bare))
    load_data(LoadConfig(), ctx("load"), **inputs)              # another recipe: fine
    with pytest.raises(DataError, match=r"eval_nogold.jsonl: none of its 4 eval questions has a "
                                        r"gold passage id.*require_gold: \[eval\]"):
        load_data(LoadConfig(require_gold=["eval"]), ctx("load"), **inputs)
    load_data(LoadConfig(require_gold=["eval"]), ctx("load"), corpus=file(paths["corpus"]),
              eval=file(paths["eval"]))                         # with gold ids: fine
