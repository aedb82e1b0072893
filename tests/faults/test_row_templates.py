"""Templates that render a row (a passage for the encoder or reranker, a question for the
retriever): ``rag plan`` refuses one that cannot fill a row, naming the key, and a field the
rows lack is named with the setting and the closest field. Before (an error-message audit), a
stray brace or a ``{0}`` passed the plan and failed mid-step as a bare ``ValueError`` or
``IndexError`` (counted as a crash, exit 1), and a misspelled field named no setting.
"""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigError
from tests.conftest import REPO, plan_checker

CASES = [
    ("dynamicrag_demo", "steps.index.text_template='{title} {text'", "steps.index.text_template",
     "is not a template: expected '}' before end of string"),
    ("dynamicrag_demo", "steps.rerank.passage_template='{0} {text}'",
     "steps.rerank.passage_template", "fills {0} by position"),
    ("dynamicrag_demo", "steps.retrieve_eval.query_template='Q: {}'",
     "steps.retrieve_eval.query_template", "fills {} by position"),
    ("dpa_rag_demo", "steps.train_reranker.passage_template='{title.upper}'",
     "steps.train_reranker.passage_template", "reads an attribute"),
    ("reinforced_ir_demo", "+encoder.passage_template='{title} {text'",
     "steps.eval_base.encoder.passage_template", "is not a template"),
]


@pytest.mark.parametrize("recipe, override, key, why", CASES, ids=[c[1] for c in CASES])
def test_a_template_that_cannot_fill_a_row_is_refused_by_the_plan(tmp_path, monkeypatch, capsys,
                                                                  recipe, override, key, why):
    plan = plan_checker(str(REPO / "conf" / f"{recipe}.yaml"), tmp_path, monkeypatch, capsys)
    code, out = plan(override)
    assert code == 2, out
    assert key in out and why in out, out


def test_a_field_the_passages_lack_names_the_setting_and_the_closest_field():
    from stages.common.index import passage_text
    from stages.dpa_rag.reranker_model import render
    from stages.reinforced_ir.embed import passage_texts

    row = {"id": "p1", "title": "Paris", "text": "is a city"}
    with pytest.raises(ConfigError, match=r"^steps.index.text_template: '\{titel\} \{text\}' "
                                          r"uses \{titel\}, which the rows lack \(did you mean "
                                          r"'title'\?\); they have: id, text, title\n"):
        passage_text("{titel} {text}", row, setting="steps.index.text_template")
    with pytest.raises(ConfigError, match=r"^passage_template: .* uses \{txt\}.*'text'"):
        render("{txt}", row)
    with pytest.raises(ConfigError, match=r"^encoder.passage_template: .* uses \{id\}, which the "
                                          r"rows lack; they have: text, title\n"):
        passage_texts([row], "{id}: {text}")
