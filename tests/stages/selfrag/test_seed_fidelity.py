"""Self-RAG's inference and evaluation against the original code (AkariAsai/self-rag @1fcdc42):
short-form w_use, the FEVER / PubHealth label mapping, the long-form beam search (depth,
finished nodes, repeated segments, prefixes), line breaks in long-form answers, and the paper
recipe's per-form settings. Pure functions and a scripted client; no model. Imports sit inside
the tests so that each fails on its own."""

from __future__ import annotations

import math

import yaml
from tests.conftest import REPO

from stages.lib.endpoint import ChatReply
from stages.selfrag.beam import Continuation, Node, beam_search
from stages.selfrag.short_form import passage_prefix
from stages.selfrag.tokens import (FULLY, IRRELEVANT, NO_SUPPORT, PARTIALLY, RELEVANT, RETRIEVAL,
                                   UTILITY)

VELMORA = {"id": "p1", "title": "Velmora", "text": "Velmora was founded by Ardan Velsh."}
BROOK = {"id": "p2", "title": "Brook", "text": "Brook has a mill."}
Q = [{"role": "user", "content": "Tell me about Velmora."}]
WEIGHTS = {"rel": 1.0, "sup": 1.0, "use": 0.5}


def _conf(name):
    return yaml.safe_load((REPO / "conf" / name).read_text())


def _reply(tokens, relevant=0.9):
    """A reply generating ``tokens``; position 0 carries the relevance distribution."""
    lp = [{RELEVANT: math.log(relevant), IRRELEVANT: math.log(1 - relevant)}]
    return ChatReply(["".join(tokens)], tokens=[list(tokens)],
                     logprobs=[lp + [{} for _ in tokens[1:]]])


class Scripted:
    """Answers each request by its assistant prefix (the longest matching key's reply)."""

    def __init__(self, script):
        self.script, self.asked = script, []

    def complete(self, asks):
        self.asked += asks
        return [self.script[max((k for k in self.script if a.prefix.endswith(k)), key=len)]
                for a in asks]


# 1. short-form w_use

def test_short_form_w_use_is_the_seeds_1_and_long_form_keeps_0_5(monkeypatch):
    from stages.selfrag import infer as infer_mod
    from stages.selfrag.infer import SelfragInferConfig, _long_form, _short_form

    cfg = SelfragInferConfig()
    assert cfg.w_use == 1.0 and cfg.long_form_w_use == 0.5
    for name in ("selfrag_llama2.yaml", "selfrag/pipeline.yaml"):
        conf = _conf(name)["selfrag"]
        assert (conf["w_use"], conf["long_form_w_use"]) == (1.0, 0.5), name
    pipe = _conf("selfrag/pipeline.yaml")["steps"]
    for step in ("infer_adaptive", "infer_always"):
        assert pipe[step]["long_form_w_use"] == "${selfrag.long_form_w_use}"
    # s_rel 0.9/(0.9+0.1) = 0.9, s_sup 0, s_use 1 ([Utility:5] at certainty): 0.9 + 1.0 x 1
    reply = ChatReply(["x"], tokens=[[RELEVANT, "x", UTILITY[4]]],
                      logprobs=[[{RELEVANT: math.log(0.9), IRRELEVANT: math.log(0.1)}, {},
                                 {UTILITY[4]: 0.0}]])
    got = _short_form({"dataset": "popqa"}, [(0, reply)], cfg)
    assert abs(got["scores"][0] - 1.9) < 1e-6
    seen = {}

    def fake(client, messages, ctxs, weights, *args, **kw):
        seen["weights"] = dict(weights)
        return "a", [1]

    monkeypatch.setattr("stages.selfrag.long_form.long_form_answer", fake)

    class Ctx:
        @staticmethod
        def progress(it, desc=""):
            return it

    _long_form(None, [{"question": "q", "ctxs": [VELMORA]}], [0], cfg, Ctx())
    assert seen["weights"] == {"rel": 1.0, "sup": 1.0, "use": 0.5}
    assert infer_mod.infer.stage_spec.version >= 2         # cached answers are not reused


# 2. FEVER / PubHealth labels

def test_fever_labels_replace_the_whole_prediction():
    from stages.selfrag.evaluate import SelfragEvaluateConfig, evaluate, score_row
    from stages.selfrag.metrics import fever_prediction, selfrag_match

    assert fever_prediction("The claim REFUTES it") == "false"
    assert fever_prediction("SUPPORTS or REFUTES") == "true"          # SUPPORTS checked first
    assert fever_prediction("Maybe") == "Maybe"
    # replaced as a whole: "true" inside a REFUTES prediction no longer matches the gold "true"
    assert selfrag_match(fever_prediction("It REFUTES: not true"), ["true"]) == 0.0
    assert evaluate.stage_spec.version >= 2
    r = score_row({"id": "h", "dataset": "health_claims", "prediction": "Verdict: REFUTES",
                   "answers": ["false"], "ctxs": []}, SelfragEvaluateConfig(metrics=["exact_match"]))
    # the rewrite is selfrag_match's only: the shared EM and the row's prediction are as written
    assert r["selfrag_match"] == 1.0
    assert r["prediction"] == "Verdict: REFUTES" and r["exact_match"] == 0.0


# 3a. depth

def test_paper_recipe_makes_the_seeds_number_of_segments():
    """The README's --max_depth 7: the seed's loop (curr_depth from 1 while < 7) makes 6."""
    seed_segments = len(range(1, 7))
    conf = _conf("selfrag_llama2.yaml")["selfrag"]

    def forever(node):
        return [Continuation("x", 0, 1.0, False)]

    got = beam_search(Node(), forever, beam_width=2, max_depth=conf["max_depth"])
    assert len(got.segments) == seed_segments == 6
    from stages.selfrag.infer import SelfragInferConfig
    assert SelfragInferConfig().max_depth == 6


# 3b. finished nodes

def test_finished_nodes_are_not_carried_into_the_next_level():
    """The seed answers with the best node of the deepest non-empty level: a finished node at
    depth 1 (0.9) loses to a deeper one (0.5 x 0.5)."""
    expanded = []

    def expand(node):
        expanded.append(node.segments)
        if not node.segments:
            return [Continuation("A", 0, 0.9, True), Continuation("B", 1, 0.5, False)]
        return [Continuation(node.segments[-1] + "+", 0, 0.5, True)]

    best = beam_search(Node(), expand, beam_width=2, max_depth=6)
    assert best.segments == ("B", "B+") and abs(best.score - 0.25) < 1e-9
    assert expanded == [(), ("B",)]


def test_finished_node_in_the_deepest_level_can_win():
    def expand(node):
        if not node.segments:
            return [Continuation("A", 0, 0.9, False), Continuation("B", 1, 0.8, False)]
        if node.segments == ("A",):
            return [Continuation("A1", 0, 0.1, False)]
        return [Continuation("B1", 0, 0.9, True)]

    assert beam_search(Node(), expand, beam_width=2, max_depth=2).segments == ("B", "B1")


# 3c. repeated segments

def test_repeated_and_empty_segments_are_left_out_of_the_answer():
    from stages.selfrag.beam import cited_answer
    from stages.selfrag.long_form import long_form_answer

    node = Node(("It is old.", "", "It is old.", "It has a mill."), (0, 1, 1, 1))
    assert cited_answer(node) == "It is old. [1] It has a mill. [2]"
    # both passages repeat the first segment; the repeat is dropped and not cited
    head_v = passage_prefix(VELMORA["title"], VELMORA["text"])
    head_b = passage_prefix(BROOK["title"], BROOK["text"])
    first = [RELEVANT, "It is old.", FULLY, RETRIEVAL]
    again = [RELEVANT, "It is old.", FULLY, UTILITY[4]]
    client = Scripted({head_v: _reply(first, 0.9), head_b: _reply(first, 0.1),
                       "It is old." + FULLY + head_v: _reply(again, 0.9),
                       "It is old." + FULLY + head_b: _reply(again, 0.1)})
    answer, cited = long_form_answer(client, Q, [VELMORA, BROOK], WEIGHTS, 8, 2, 6)
    assert (answer, cited) == ("It is old. [1]", [1])


# 4. prefixes

def test_next_prefix_is_the_generated_text_without_earlier_passages():
    from stages.selfrag.long_form import long_form_answer

    head_v = passage_prefix(VELMORA["title"], VELMORA["text"])
    head_b = passage_prefix(BROOK["title"], BROOK["text"])
    gen = RELEVANT + "Ardan Velsh founded it." + FULLY
    client = Scripted({
        head_v: _reply([RELEVANT, "Ardan Velsh founded it.", FULLY, RETRIEVAL, "<paragraph>"]),
        head_b: _reply([IRRELEVANT, "It has a mill.", NO_SUPPORT, UTILITY[0]], 0.1),
        gen + head_v: _reply([RELEVANT, "It is old.", PARTIALLY, UTILITY[2]], 0.5),
        gen + head_b: _reply([RELEVANT, "It has a mill.", FULLY, UTILITY[4]], 0.9)})
    answer, cited = long_form_answer(client, Q, [VELMORA, BROOK], WEIGHTS, 8, 2, 6)
    assert answer == "Ardan Velsh founded it. [1] It has a mill. [2]" and cited == [1, 2]
    second = [a.prefix for a in client.asked[2:]]
    assert second == [gen + head_v, gen + head_b]
    assert all(p.count("<paragraph>") == 1 for p in second)


# 5. line breaks (ALCE scores the first line)

def test_long_form_answers_keep_line_breaks_for_alces_first_line():
    from stages.lib.metrics.alce import alce_output
    from stages.selfrag.infer import SelfragInferConfig, _short_form
    from stages.selfrag.long_form import clean_segment, long_form_answer

    assert clean_segment(RELEVANT + "It is old.\nIt has a mill." + FULLY) == \
        "It is old.\nIt has a mill."
    head_v = passage_prefix(VELMORA["title"], VELMORA["text"])
    client = Scripted({head_v: _reply([RELEVANT, "It is old.\n", "Q: more", UTILITY[4]])})
    answer, _ = long_form_answer(client, Q, [VELMORA], WEIGHTS, 8, 2, 6)
    assert answer == "It is old.\nQ: more [1]" and alce_output(answer) == "It is old."
    # no retrieval: cut at the first blank line, as the seed (run_long_form_static.py:196)
    raw = ChatReply(["[No Retrieval]Velmora is old.\nIt has a mill.\n\nQ: what else?"])
    got = _short_form({"dataset": "asqa"}, [(None, raw)], SelfragInferConfig(), True)
    assert got["prediction"] == "Velmora is old.\nIt has a mill."
    got = _short_form({"dataset": "popqa"}, [(None, raw)], SelfragInferConfig())
    assert got["prediction"] == "Velmora is old. It has a mill. Q: what else?"   # short form


# 6. the paper recipe's per-form settings

def test_paper_recipe_per_form_lengths_and_critic_warmup():
    from stages.selfrag.infer import SelfragInferConfig, _requests

    conf = _conf("selfrag_llama2.yaml")
    sr = conf["selfrag"]
    assert (sr["max_new_tokens"], sr["long_form_max_new_tokens"],
            sr["closed_set_max_new_tokens"]) == (100, 300, 50)
    assert conf["steps"]["critic"]["warmup_ratio"] == 0.01
    cfg = SelfragInferConfig(max_new_tokens=100, long_form_max_new_tokens=300,
                             closed_set_max_new_tokens=50)
    rows = [{"question": "q", "dataset": d, "ctxs": [VELMORA]}
            for d in ("popqa", "arc_challenge", "asqa", "health_claims")]
    jobs = _requests(rows, [True, True, False, False], [False, False, True, False], cfg)
    assert [req.max_tokens for _, _, req in jobs] == [100, 50, 300, 50]
