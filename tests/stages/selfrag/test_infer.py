"""selfrag.infer and selfrag.evaluate on a tiny LM taught (plain torch, seconds) to emit reflection
tokens: the retrieval decision (probability rule and the seed's log-ratio rule), per-passage
scoring, the closed-set vote, no retrieval, the long-form beam search; expectations computed by
hand from what it was taught."""

from __future__ import annotations

import pytest
import yaml
from tests.conftest import REPO

from stages.schemas import Model, Predictions, Retrieved
from stages.selfrag.evaluate import SelfragEvaluateConfig, evaluate
from stages.selfrag.infer import SelfragInferConfig, infer
from stages.selfrag.short_form import passage_prefix
from stages.selfrag.tokens import SPECIAL_TOKENS

VELMORA = {"id": "p1", "title": "Velmora", "text": "Velmora was founded by Ardan Velsh.",
           "score": 2.0}
KELMARO = {"id": "p2", "title": "Kelmaro", "text": "Kelmaro is a river town.", "score": 1.0}
BROOK = {"id": "p3", "title": "Brook", "text": "Brook has a mill.", "score": 0.5}
OPEN_Q = "Who founded Velmora?"
SUM_Q = "What is 7 plus 5?"
CLAIM = "Is the claim true or false? Velmora has a mill."
LONG_Q = "Tell me about Velmora."
FIRST = "[Relevant]Ardan Velsh founded it.[Fully supported]"   # the next prefix: generated text
                                                              # only, no earlier passage
# (question, assistant prefix, target): what the tiny model is taught to say
LESSONS = [
    (SUM_Q, "", "[No Retrieval]12[Utility:5]"),
    (OPEN_Q, "", "[Retrieval]"),
    (CLAIM, "", "[Retrieval]"),
    (OPEN_Q, passage_prefix(VELMORA["title"], VELMORA["text"]),
     "[Relevant]Ardan Velsh[Fully supported][Utility:5]"),
    (OPEN_Q, passage_prefix(KELMARO["title"], KELMARO["text"]),
     "[Irrelevant]Bram Oster[No support / Contradictory][Utility:1]"),
    (OPEN_Q, "[No Retrieval]", "Nobody[Utility:1]"),
    # the claim: one passage says true (score 1 + 1 + 1), two say false (1 + 0.5 + 0.5, 1 + 0.5)
    (CLAIM, passage_prefix(VELMORA["title"], VELMORA["text"]),
     "[Relevant]true[Fully supported][Utility:5]"),
    (CLAIM, passage_prefix(KELMARO["title"], KELMARO["text"]),
     "[Relevant]false[Partially supported][Utility:4]"),
    (CLAIM, passage_prefix(BROOK["title"], BROOK["text"]),
     "[Relevant]false[Partially supported][Utility:3]"),
    # long form: Velmora's segment asks for more evidence; Brook's finishes at once, irrelevant
    (LONG_Q, "", "[Retrieval]"),
    (LONG_Q, passage_prefix(VELMORA["title"], VELMORA["text"]),
     "[Relevant]Ardan Velsh founded it.[Fully supported][Retrieval]"),
    (LONG_Q, passage_prefix(BROOK["title"], BROOK["text"]),
     "[Irrelevant]It has a mill.[No support / Contradictory][Utility:1]"),
    (LONG_Q, FIRST + passage_prefix(VELMORA["title"], VELMORA["text"]),
     "[Relevant]It is old.[Partially supported][Utility:3]"),
    (LONG_Q, FIRST + passage_prefix(BROOK["title"], BROOK["text"]),
     "[Relevant]It has a mill.[Fully supported][Utility:5]"),
]


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    """A tiny LM with the 15 special tokens added, taught the LESSONS until it says them."""
    from stages.lib.testing.teach import teach
    from stages.lib.testing.tiny import tiny_causal_lm

    path = tiny_causal_lm(tmp_path_factory.mktemp("selfrag_gen") / "lm",
                          [q for q, _, _ in LESSONS]
                          + [p["text"] for p in (VELMORA, KELMARO, BROOK)]
                          + ["Ardan Velsh Bram Oster Nobody true false 12"], hidden_size=64)
    lessons = [([{"role": "user", "content": q}], prefix, target) for q, prefix, target in LESSONS]
    loss = teach(path, lambda rng: lessons, steps=200, lr=1e-2, add_tokens=SPECIAL_TOKENS)
    assert loss < 0.05, f"the tiny generator did not learn its lessons (loss {loss})"
    return path


def _run(model_env, generator, rows, **cfg):
    art, ctx = model_env
    cfg = SelfragInferConfig(max_new_tokens=12, **cfg)
    out = infer(art(Retrieved, rows), art(Model, str(generator)), cfg, ctx("infer"))
    return {r["id"]: r for r in art(Predictions, out).rows()}, out


def _row(qid, question, ctxs, dataset="popqa", answers=("Ardan Velsh",)):
    return {"id": qid, "dataset": dataset, "question": question, "answers": list(answers),
            "gold": [], "ctxs": ctxs}


def test_adaptive_decision_on_probabilities_and_the_seeds_log_ratio(model_env, generator):
    rows = [_row("open", OPEN_Q, [VELMORA]), _row("sum", SUM_Q, [VELMORA], answers=["12"])]
    got, raw = _run(model_env, generator, rows, mode="adaptive_retrieval", ndocs=1)
    assert got["open"]["retrieved"] and not got["sum"]["retrieved"]
    assert raw[0]["p_retrieve"] > 0.9 and raw[1]["p_retrieve"] < 0.1
    assert got["open"]["prediction"] == "Ardan Velsh" and got["open"]["selected"] == [1]
    assert got["sum"]["prediction"] == "12" and got["sum"]["ctxs"] == []
    # lp(Ret)/(lp(Ret)+lp(NoRet)) is near 0 when p(Ret) is near 1: the seed's rule inverts (#45)
    got, _ = _run(model_env, generator, rows, mode="adaptive_retrieval", rule="log_ratio", ndocs=1)
    assert not got["open"]["retrieved"] and got["sum"]["retrieved"]


def test_always_retrieve_scores_each_passage_and_picks_the_best(model_env, generator):
    got, raw = _run(model_env, generator, [_row("open", OPEN_Q, [KELMARO, VELMORA])],
                    mode="always_retrieve", ndocs=2)
    row = got["open"]
    assert row["retrieved"] and row["selected"] == [2] and row["selection"] == "[2]"
    assert row["prediction"] == "Ardan Velsh" and [c["id"] for c in row["ctxs"]] == ["p2", "p1"]
    # short form w_use 1 (the seed's): Kelmaro: s_rel ≈ 0, s_sup ≈ 0, s_use ≈ -1 -> -1;
    # Velmora: 1 + 1 + 1
    assert raw[0]["scores"] == pytest.approx([-1.0, 3.0], abs=0.1)


def test_closed_set_sums_scores_per_answer(model_env, generator):
    rows = [_row("c", CLAIM, [VELMORA, KELMARO, BROOK], dataset="fever", answers=["false"])]
    got, raw = _run(model_env, generator, rows, mode="always_retrieve", ndocs=3)
    # w_use 1: true: 1 + 1 + 1 = 3 (one passage); false: (1 + 0.5 + 0.5) + (1 + 0.5 + 0) = 3.5
    assert raw[0]["scores"] == pytest.approx([3.0, 2.0, 1.5], abs=0.1)
    assert got["c"]["prediction"] == "false" and got["c"]["selected"] == [2]
    got, _ = _run(model_env, generator, rows, mode="always_retrieve", ndocs=3, closed_set=[])
    assert got["c"]["prediction"] == "true" and got["c"]["selected"] == [1]   # best single passage


def test_openbookqa_and_medqa_are_closed_sets_by_default(model_env, generator):
    """Before: the default closed sets named OpenBookQA only as ``obqa``, and MedQA not at all,
    so ``openbookqa_processed_retrieved`` and ``medqa_test_en_retrieved`` took the best single
    passage's answer instead of the summed-score vote."""
    rows = [_row(d, CLAIM, [VELMORA, KELMARO, BROOK], dataset=d, answers=["false"])
            for d in ("openbookqa_processed_retrieved", "medqa_test_en_retrieved", "obqa", "nq")]
    got, _ = _run(model_env, generator, rows, mode="always_retrieve", ndocs=3)
    assert {d: got[d]["prediction"] for d in got} == {
        "openbookqa_processed_retrieved": "false", "medqa_test_en_retrieved": "false",
        "obqa": "false", "nq": "true"}


def test_long_form_beam_search_cites_the_best_path(model_env, generator):
    rows = [_row("l", LONG_Q, [VELMORA, BROOK], dataset="asqa")]
    got, raw = _run(model_env, generator, rows, mode="always_retrieve", ndocs=2, beam_width=2,
                    max_depth=7)
    # depth 1: Velmora 1 + 1 + 0 (no utility token before its [Retrieval]) = 2, open;
    #          Brook 0 + 0 + 0.5·(-1) = -0.5, finished.
    # depth 2 under Velmora: Velmora 1 + 0.75 + 0 -> 2 x 1.75 = 3.5;
    #                        Brook 1 + 1 + 0.5 -> 2 x 2.5 = 5
    assert got["l"]["prediction"] == "Ardan Velsh founded it. [1] It has a mill. [2]"
    assert got["l"]["selected"] == [1, 2] and got["l"]["retrieved"]
    got, _ = _run(model_env, generator, rows, mode="always_retrieve", ndocs=2, max_depth=1)
    assert got["l"]["prediction"] == "Ardan Velsh founded it. [1]"          # depth 1 only
    # use_seqscore adds ≈ 1 (said with certainty) per segment: 3 x 2.75 = 8.25 < 3 x 3.5 = 10.5
    got, _ = _run(model_env, generator, rows, mode="always_retrieve", ndocs=2, use_seqscore=True)
    assert got["l"]["prediction"] == "Ardan Velsh founded it. [1] It has a mill. [2]"


def test_no_retrieval_mode_and_evaluation(model_env, generator):
    art, ctx = model_env
    rows = [_row("open", OPEN_Q, [VELMORA]), _row("sum", SUM_Q, [VELMORA], answers=["12"])]
    rows[0]["qa_pairs"], rows[1]["qa_pairs"] = [["Nobody"], ["Ardan Velsh"]], None   # ASQA-style
    got, raw = _run(model_env, generator, rows, mode="no_retrieval")
    assert [r["retrieved"] for r in raw] == [False, False]
    assert got["open"]["prediction"] == "Nobody" and got["sum"]["prediction"] == "12"
    assert got["open"]["qa_pairs"] == [["Nobody"], ["Ardan Velsh"]]     # passed through
    metrics, per_q = evaluate(art(Predictions, raw), SelfragEvaluateConfig(name="none"),
                              ctx("evaluate"))
    assert metrics["selfrag_match"] == 0.5 and metrics["retrieval_frequency"] == 0.0
    assert metrics["str_em"] == 0.5 and metrics["by_dataset"]["popqa"]["str_em"] == 0.5
    assert metrics["display"]["selfrag_match"] == "match" and metrics["label"] == "none"
    _, adaptive = _run(model_env, generator, rows, mode="adaptive_retrieval", ndocs=1)
    metrics, _ = evaluate(art(Predictions, adaptive), SelfragEvaluateConfig(), ctx("evaluate"))
    assert metrics["selfrag_match"] == 1.0 and metrics["retrieval_frequency"] == 0.5
    assert metrics["by_dataset"]["popqa"]["retrieval_frequency"] == 0.5


def test_evaluate_is_case_sensitive_and_maps_fever_labels(model_env):
    art, ctx = model_env
    rows = [{"id": "a", "dataset": "popqa", "question": "q", "answers": ["Paris"], "gold": [],
             "ctxs": [], "selected": [], "selection": "None", "prediction": "paris"},
            {"id": "b", "dataset": "pubhealth", "question": "q", "answers": ["true"], "gold": [],
             "ctxs": [VELMORA], "selected": [1], "selection": "[1]", "prediction": "SUPPORTS"}]
    metrics, _ = evaluate(art(Predictions, rows), SelfragEvaluateConfig(), ctx("evaluate"))
    assert metrics["by_dataset"]["popqa"]["selfrag_match"] == 0.0      # case-sensitive
    assert metrics["by_dataset"]["pubhealth"]["selfrag_match"] == 1.0  # SUPPORTS -> true
    assert metrics["retrieval_frequency"] == 0.5                       # no `retrieved`: ctxs read


def test_seqscore_adds_exp_of_the_mean_token_logprob_of_each_passage(model_env, generator):
    """use_seqscore: each passage's score gains exp(mean log-prob of its generated tokens), the
    end token included; the taught model says its lessons with probability near 1 per token."""
    import math

    from stages.lib.endpoint import ChatRequest, EndpointConfig, open_client
    from stages.selfrag.tokens import REFLECTION_TOKENS

    rows = [_row("open", OPEN_Q, [KELMARO, VELMORA])]
    _, plain = _run(model_env, generator, rows, mode="always_retrieve", ndocs=2)
    _, seq = _run(model_env, generator, rows, mode="always_retrieve", ndocs=2, use_seqscore=True)
    cfg = EndpointConfig(backend="transformers", model=str(generator), max_tokens=12)
    with open_client(cfg, model_env[1]("probe").scratch / "probe") as llm:
        replies = llm.complete([ChatRequest([{"role": "user", "content": OPEN_Q}],
                                            logprobs_of=REFLECTION_TOKENS, token_logprobs=True,
                                            prefix=passage_prefix(p["title"], p["text"]))
                                for p in (KELMARO, VELMORA)])
    by_hand = [math.exp(sum(r.token_logprobs[0]) / len(r.token_logprobs[0])) for r in replies]
    # "[Irrelevant]Bram Oster[No support / Contradictory][Utility:1]" then the end token
    assert len(replies[0].token_logprobs[0]) == len(replies[0].tokens[0]) + 1
    assert by_hand == pytest.approx([1.0, 1.0], abs=0.05)
    assert seq[0]["scores"] == pytest.approx([s + b for s, b in zip(plain[0]["scores"], by_hand)],
                                             abs=1e-5)
    assert seq[0]["prediction"] == plain[0]["prediction"] == "Ardan Velsh"


def test_threshold_outside_a_probability_is_refused():
    from orchestrator.api import ConfigError

    SelfragInferConfig(use_seqscore=True)                  # no longer refused at plan time
    with pytest.raises(ConfigError, match="threshold: 2.0 is not a probability"):
        SelfragInferConfig(threshold=2.0)
    SelfragInferConfig(threshold=2.0, rule="log_ratio")    # a ratio of log-probs may exceed 1


def test_pipeline_lists_the_special_tokens_of_tokens_py():
    conf = yaml.safe_load((REPO / "conf" / "selfrag" / "pipeline.yaml").read_text())
    assert tuple(conf["selfrag"]["special_tokens"]) == SPECIAL_TOKENS
    assert conf["steps"]["generator"]["masked_spans"] == [["<paragraph>", "</paragraph>"]]


def test_long_form_seqscore_can_change_the_chosen_segment():
    """A scripted client: passage 1's segment is more relevant (0.6 vs 0.5) but said with
    probability 0.1 per token; with use_seqscore exp(mean) = 0.1 vs 0.9 turns the choice."""
    import math

    from stages.lib.endpoint import ChatReply
    from stages.selfrag.long_form import long_form_answer
    from stages.selfrag.tokens import IRRELEVANT, RELEVANT

    class Scripted:
        asked: list = []

        def complete(self, asks):
            self.asked += asks
            return [ChatReply([f"{RELEVANT}{a}"], tokens=[[RELEVANT, a, "."]],
                              logprobs=[[{RELEVANT: math.log(r), IRRELEVANT: math.log(1 - r)},
                                         {}, {}]],
                              token_logprobs=[[math.log(p)] * 4])   # the end token included
                    for a, r, p in (("Velsh", 0.6, 0.1), ("Oster", 0.5, 0.9))]

    weights = {"rel": 1.0, "sup": 1.0, "use": 0.5}
    client = Scripted()
    args = ([{"role": "user", "content": LONG_Q}], [VELMORA, KELMARO], weights, 8, 2, 1)
    assert long_form_answer(client, *args) == ("Velsh. [1]", [1])          # 0.6 > 0.5
    assert not any(a.token_logprobs for a in client.asked)
    assert long_form_answer(client, *args, use_seqscore=True) == ("Oster. [2]", [2])  # 0.7 < 1.4
    assert all(a.token_logprobs for a in client.asked[2:])
