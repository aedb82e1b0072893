"""DPA-RAG's paper recipe indexes a passage as DPR encodes it: the pair (title, text), i.e.
``[CLS] title [SEP] text [SEP]`` with segment ids all 0 (DPR's BiEncoder). The index stage's
default, ``"{title} {text}"`` (Contriever's), ran the two together (fidelity audit A1)."""

from __future__ import annotations

import pytest
import yaml

from stages.common.index import passage_text
from tests.conftest import REPO


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    """MiniLM's tokenizer: bert-base-uncased's WordPiece, as DPR's."""
    from stages.lib.models import packaged
    from orchestrator.errors import ConfigError

    transformers = pytest.importorskip("transformers")
    try:
        packaged.package_file(*packaged.MINILM_PACKAGE)
    except ConfigError as exc:
        pytest.skip(str(exc))
    folder = packaged.prepare_minilm(tmp_path_factory.mktemp("models") / "minilm")
    return transformers.AutoTokenizer.from_pretrained(str(folder))


def test_the_paper_recipe_encodes_dprs_title_text_pair(wordpiece):
    recipe = yaml.safe_load((REPO / "conf" / "dpa_rag_llama3.yaml").read_text())
    template = recipe["retrieval"]["text_template"]
    row = {"title": "Aaron", "text": "Aaron is a prophet, high priest, and the brother of Moses."}
    ours = wordpiece(passage_text(template, row))["input_ids"]
    dpr = wordpiece(row["title"], text_pair=row["text"])["input_ids"]
    assert ours == dpr
    assert wordpiece(passage_text("{title} {text}", row))["input_ids"] != dpr
