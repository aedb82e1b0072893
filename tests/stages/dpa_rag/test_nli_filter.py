"""``dpa_rag.nli_filter`` on a tiny classifier forced to one label (zero classifier weight, a
bias that makes that label win): both scopes, the label column, and a model whose labels are
not NLI labels."""

from __future__ import annotations

import pytest

from orchestrator.api import ConfigError
from orchestrator.artifacts import Ref
from stages.dpa_rag.nli_filter import NliFilterConfig, nli_filter
from stages.dpa_rag.schemas import Augmented
from stages.lib.testing.tiny import tiny_classifier
from stages.schemas import Model

KINDS = ["rephrase", "complexity", "decompose", "constraint", "sparql"]
LABELS = ["CONTRADICTION", "Entailment", "neutral"]   # any order and case


def rows():
    out = []
    for q in ("q1", "q2"):
        base = {"dataset": "nq", "answers": ["x"], "gold": [], "source_id": q}
        out.append({**base, "id": q, "question": f"Where is {q}?", "kind": "original"})
        out += [{**base, "id": f"{q}#{k}", "question": f"{k} {q}", "kind": k} for k in KINDS]
    return out


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """Checkpoints that always answer one label, and one with sentiment labels."""
    import torch
    from transformers import AutoModelForSequenceClassification

    root = tmp_path_factory.mktemp("nli")
    texts = [r["question"] for r in rows()]
    base = tiny_classifier(root / "base", texts, LABELS)
    paths = {}
    for winner in ("contradiction", "entailment"):
        model = AutoModelForSequenceClassification.from_pretrained(str(base))
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(
                [5.0 if name.lower() == winner else 0.0 for name in LABELS]))
        model.save_pretrained(str(root / winner))
        for f in base.glob("*token*"):   # the tokenizer files
            (root / winner / f.name).write_bytes(f.read_bytes())
        paths[winner] = root / winner
    paths["sentiment"] = tiny_classifier(root / "sentiment", texts, ["negative", "positive"])
    return paths


def model_input(path) -> Model:
    return Model(Ref("dir", Model.type_name(), "hash", [str(path)]))


def run(env, path, **cfg):
    table, written, ctx = env
    return written(Augmented, nli_filter(table(Augmented, rows()), model_input(path),
                                         NliFilterConfig(**cfg), ctx("nli_filter")))


def test_entailment_keeps_everything_and_labels_the_checked(env, classifiers):
    out = run(env, classifiers["entailment"])
    assert [r["id"] for r in out] == [r["id"] for r in rows()]
    label = {r["id"]: r["nli"] for r in out}
    assert label["q1"] is None and label["q1#sparql"] is None and label["q2#constraint"] is None
    assert [label[f"q2#{k}"] for k in KINDS[:3]] == ["entailment"] * 3


def test_query_scope_keeps_only_the_originals_of_contradicted_queries(env, classifiers):
    out = run(env, classifiers["contradiction"], check_kinds=["decompose"])
    assert [(r["id"], r["nli"]) for r in out] == [("q1", None), ("q2", None)]


def test_the_label_column_is_text_even_when_every_label_is_null(env, classifiers):
    """Only originals survive here, so no kept row has a label; the column stays a string
    column (before, Arrow inferred the null type from the data)."""
    import pyarrow as pa

    table, _, ctx = env
    out = nli_filter(table(Augmented, rows()), model_input(classifiers["contradiction"]),
                     NliFilterConfig(check_kinds=["decompose"]), ctx("nli_filter"))
    assert out.column("nli").null_count == out.num_rows == 2
    assert out.schema.field("nli").type == pa.string()


def test_augmentation_scope_drops_only_the_contradicting_ones(env, classifiers, caplog):
    with caplog.at_level("INFO"):
        out = run(env, classifiers["contradiction"], check_kinds=["rephrase", "sparql"],
                  scope="augmentation")
    assert [r["id"] for r in out] == [f"{q}{k}" for q in ("q1", "q2")
                                      for k in ["", "#complexity", "#decompose", "#constraint"]]
    assert all(r["nli"] is None for r in out)
    assert "'rephrase': {'contradiction': 2}" in caplog.text
    assert "kept 6 of 10 augmentations of 2 queries" in caplog.text


def test_a_model_without_nli_labels_is_refused(env, classifiers):
    with pytest.raises(ConfigError, match=r"labels \['negative', 'positive'\] are not NLI"):
        run(env, classifiers["sentiment"])


def test_config_needs_something_to_check():
    with pytest.raises(ConfigError, match="check_kinds: empty"):
        NliFilterConfig(check_kinds=[])
