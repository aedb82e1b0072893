"""The request cache: a record is whole or absent; anything else is a miss, never a wrong answer."""

from __future__ import annotations

import doctest
import json

from stages.lib.endpoint import ChatReply, ChatRequest, request
from stages.lib.endpoint.cache import RequestCache
from stages.lib.endpoint.request import request_key, request_record

REQ = ChatRequest([{"role": "user", "content": "Hi"}], temperature=0.0, top_p=1.0, max_tokens=4,
                  seed=0)


def test_doctests():   # the cache module has no examples: its tests are below
    result = doctest.testmod(request)
    assert result.attempted and not result.failed


def test_round_trip_and_layout(tmp_path):
    cache, key = RequestCache(tmp_path), request_key("m", REQ)
    assert cache.get(key) is None
    cache.put(key, request_record("m", REQ), ChatReply(["Hello"], [["Hel", "lo"]],
                                                       [[{"x": -1.5}, {}]]))
    got = cache.get(key)
    assert got.texts == ["Hello"] and got.logprobs == [[{"x": -1.5}, {}]]
    assert cache.path(key) == tmp_path / key[:2] / f"{key}.json"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{key}.json"]   # no temp left
    assert len(cache) == 1


def test_half_written_or_foreign_records_are_misses(tmp_path, caplog):
    cache, key = RequestCache(tmp_path), request_key("m", REQ)
    cache.put(key, request_record("m", REQ), ChatReply(["Hello"]))
    whole = cache.path(key).read_text()
    cache.path(key).write_text(whole[: len(whole) // 2])            # a torn write (not ours)
    assert cache.get(key) is None
    assert "unreadable" in caplog.text
    other = request_key("m", ChatRequest(REQ.messages, max_tokens=5))
    cache.path(key).write_text(json.dumps({**json.loads(whole), "key": other}))
    assert cache.get(key) is None
    (tmp_path / key[:2] / f"{key}.123.456.tmp").write_text(whole)   # a killed writer's temp file
    cache.path(key).unlink()
    assert cache.get(key) is None and len(cache) == 0


def test_the_key_ignores_nothing_that_changes_an_answer():
    base = request_key("m", REQ)
    changed = [
        request_key("other-model", REQ),
        request_key("m", ChatRequest([{"role": "user", "content": "Hi!"}], 0.0, 1.0, 4, 0)),
        request_key("m", ChatRequest(REQ.messages, 0.5, 1.0, 4, 0)),
        request_key("m", ChatRequest(REQ.messages, 0.0, 0.9, 4, 0)),
        request_key("m", ChatRequest(REQ.messages, 0.0, 1.0, 8, 0)),
        request_key("m", ChatRequest(REQ.messages, 0.0, 1.0, 4, 1)),
        request_key("m", ChatRequest(REQ.messages, 0.0, 1.0, 4, 0, n=2)),
        request_key("m", ChatRequest(REQ.messages, 0.0, 1.0, 4, 0, stop=("\n",))),
        request_key("m", ChatRequest(REQ.messages, 0.0, 1.0, 4, 0, logprobs_of=("yes",))),
        request_key("m", ChatRequest(REQ.messages, 0.0, 1.0, 4, 0, prefix="[Retrieval]")),
        request_key("m", ChatRequest(REQ.messages, 0.0, 1.0, 4, 0, token_logprobs=True)),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_keys_of_requests_without_a_prefix_did_not_change_when_it_was_added():
    assert "prefix" not in request_record("m", REQ)
    assert "token_logprobs" not in request_record("m", REQ)     # nor when token_logprobs was
    assert request_key("m", REQ) == ("c2afb068a583711496e01db3d684d2c4"
                                     "ba25abf330f5698916e9ca734e652ac0")


def test_token_logprobs_round_trip_through_the_cache(tmp_path):
    req = ChatRequest(REQ.messages, 0.0, 1.0, 4, 0, token_logprobs=True)
    cache, key = RequestCache(tmp_path), request_key("m", req)
    cache.put(key, request_record("m", req), ChatReply(["Hello"], token_logprobs=[[-0.5, -1.25]]))
    assert cache.get(key).token_logprobs == [[-0.5, -1.25]]
    assert json.loads(cache.path(key).read_text())["request"]["token_logprobs"] is True


def test_a_shared_cache_marks_an_answer_used_and_takes_a_steps_earlier_answers(tmp_path):
    """``answers/`` is read first; a hit sets the file's mtime (rag gc removes answers unused
    for 30 days); a miss there is looked up in the step's own cache (answers kept before they
    were shared) and copied over, so upgrading mid-run pays nothing twice."""
    import os

    from stages.lib.endpoint.cache import RequestCache
    from stages.lib.endpoint.request import ChatReply

    step = RequestCache(tmp_path / "scratch")
    step.put("ab" + "1" * 62, {"messages": []}, ChatReply(["kept"]))
    shared = RequestCache(tmp_path / "answers", earlier=step, touch=True)
    assert shared.get("ab" + "1" * 62).texts == ["kept"]
    copied = shared.path("ab" + "1" * 62)
    assert copied.is_file()
    os.utime(copied, (1_000_000, 1_000_000))
    assert shared.get("ab" + "1" * 62).texts == ["kept"] and copied.stat().st_mtime > 1_000_000
    assert shared.get("cd" + "2" * 62) is None


def test_a_forced_step_asks_again_and_an_unreadable_or_empty_earlier_answer_is_no_hit(tmp_path):
    """refresh (a step recomputed with --force/--from): the shared answers are not read, what
    it asks replaces them, and its own scratch holds its progress for a resume. A record in a
    step's scratch that does not parse, or an empty answer kept there, is a miss, not a crash
    (the step's cache was read without a guard) or an answer served from then on."""
    from stages.lib.endpoint.cache import RequestCache
    from stages.lib.endpoint.request import ChatReply

    key, other, empty = "ab" + "1" * 62, "cd" + "2" * 62, "ef" + "3" * 62
    RequestCache(tmp_path / "answers").put(key, {}, ChatReply(["old"]))
    forced = RequestCache(tmp_path / "answers", earlier=RequestCache(tmp_path / "scratch"),
                          touch=True, refresh=True)
    assert forced.get(key) is None
    forced.put(key, {}, ChatReply(["new"]))
    assert forced.get(key).texts == ["new"]                      # a resumed forced attempt
    assert RequestCache(tmp_path / "answers").get(key).texts == ["new"]

    step = RequestCache(tmp_path / "step")
    step.path(other).parent.mkdir(parents=True)
    step.path(other).write_bytes(b"\xff{not json")
    step.put(empty, {}, ChatReply([""], meta={"finish_reasons": ["stop"]}))
    shared = RequestCache(tmp_path / "answers", earlier=step, touch=True)
    assert shared.get(other) is None and shared.get(empty) is None
    assert not shared.path(empty).exists()


def test_how_many_alternatives_are_reported_is_part_of_a_logprobs_request():
    """top_logprobs decides which asked tokens a reply holds; answers are shared by steps, so
    a step asking with another top_logprobs must not be served the old reply."""
    from stages.lib.endpoint import EndpointConfig

    ask = ChatRequest([{"role": "user", "content": "Hi"}], logprobs_of=("[Relevant]",))
    keys = {request_key("m", ask.resolved(EndpointConfig(top_logprobs=k))) for k in (5, 20)}
    assert len(keys) == 2
    plain = {request_key("m", REQ.resolved(EndpointConfig(top_logprobs=k))) for k in (5, 20)}
    assert len(plain) == 1 and plain == {request_key("m", REQ.resolved(EndpointConfig()))}
