"""EndpointClient against a real HTTP server: cache, zero repeats after a kill, bounded concurrency,
no key on disk."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from stages.lib.endpoint import ChatRequest, EndpointConfig, open_client

REPO = Path(__file__).resolve().parents[4]
SERVER_KEY = "sk-test-Zq81xKey"

ASK_MANY = """
import sys
from stages.lib.endpoint import EndpointConfig, open_client
base_url, cache, m, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cfg = EndpointConfig(base_url=base_url, model="tiny", max_concurrency=conc, max_tokens=6,
                     max_retries=0)
with open_client(cfg, cache) as llm:
    replies = llm.chat([[{"role": "user", "content": f"question {i}"}] for i in range(m)])
assert len(replies) == m and all(isinstance(r.text, str) for r in replies)
print("asked", llm.asked, "cached", llm.cache_hits)
"""


def questions(m: int, word: str = "question") -> list[list[dict]]:
    return [[{"role": "user", "content": f"{word} {i}"}] for i in range(m)]


def records(cache: Path) -> int:
    return sum(1 for _ in cache.glob("*/*.json"))


def ask_many(server, cache: Path, m: int, conc: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": SERVER_KEY}
    return subprocess.Popen([sys.executable, "-c", ASK_MANY, server.base_url, str(cache), str(m),
                             str(conc)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(condition, seconds: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_answers_come_back_cached_and_second_call_asks_nothing(server, endpoint_cfg, tmp_path):
    with open_client(endpoint_cfg, tmp_path / "cache") as llm:
        first = llm.chat(questions(5))
    assert [len(r.texts) for r in first] == [1] * 5
    assert all(isinstance(r.text, str) for r in first)
    assert server.stats()["served"] == 5 and records(tmp_path / "cache") == 5
    with open_client(endpoint_cfg, tmp_path / "cache") as llm:   # a new process would do the same
        again = llm.chat(questions(5))
    assert server.stats()["served"] == 5, "the second call must make zero requests"
    assert (llm.asked, llm.cache_hits) == (0, 5)
    assert [r.texts for r in again] == [r.texts for r in first]


def test_cache_key_holds_every_answer_deciding_parameter(server, endpoint_cfg, tmp_path):
    with open_client(endpoint_cfg, tmp_path / "cache") as llm:
        llm.chat(questions(2))
        llm.chat(questions(2), max_tokens=3)                 # other sampling params: asked again
        llm.chat(questions(2), temperature=0.7, seed=1)
        llm.chat(questions(2), temperature=0.7, seed=2)      # other seed: asked again
        llm.chat(questions(2), temperature=0.7, seed=2)      # same: cached
        same = llm.chat(questions(3) + questions(3))         # duplicates in a batch: asked once
    assert server.stats()["served"] == 2 + 2 + 2 + 2 + 1
    assert [r.texts for r in same[:3]] == [r.texts for r in same[3:]]


def test_kill_after_n_calls_then_rerun_asks_exactly_the_rest(server, tmp_path):
    """The client is SIGKILLed after N answered calls of M; the rerun asks M - N, repeats none."""
    m, conc, cache = 30, 3, tmp_path / "cache"
    server.control(hang_after=12)            # calls after the 12th wait unanswered: the kill point
    proc = ask_many(server, cache, m, conc)
    try:
        def blocked():     # every call in the server is held unanswered; none is being answered
            stats = server.stats()
            return stats["served"] >= 12 and stats["active"] == stats["waiting"] > 0

        wait_for(blocked, what="the client to block on the unanswered calls")
        n = server.stats()["served"]
        wait_for(lambda: records(cache) == n, what="the answered calls to be cached")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    server.reset()                             # lets the orphaned waiting calls go (uncounted)

    rerun = ask_many(server, cache, m, conc)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    stats = server.stats()
    assert stats["repeats"] == 0
    assert stats["served"] == m - n, f"killed after {n} of {m}: the rerun asked {stats['served']}"
    assert f"asked {m - n} cached {n}" in out
    assert records(cache) == m


def test_kill_at_any_moment_repeats_at_most_the_calls_in_flight(server, tmp_path):
    """Killed mid-flight, only answers that had not reached the cache can be asked again."""
    m, conc, cache = 24, 3, tmp_path / "cache"
    server.control(delay=0.05)
    proc = ask_many(server, cache, m, conc)
    wait_for(lambda: server.stats()["served"] >= 8, what="8 answers")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    wait_for(lambda: server.stats()["active"] == 0, what="the server to finish the orphans")
    # a request already sent may reach a handler after that: wait until nothing new arrives
    quiet = {"received": -1, "since": time.monotonic()}

    def settled() -> bool:
        received = server.stats()["received"]
        if received != quiet["received"]:
            quiet.update(received=received, since=time.monotonic())
        return server.stats()["active"] == 0 and time.monotonic() - quiet["since"] > 0.5

    wait_for(settled, what="the orphaned requests to stop arriving")
    before = server.stats()["served"]
    kept = records(cache)
    assert before - conc <= kept <= before

    rerun = ask_many(server, cache, m, conc)
    assert rerun.wait(timeout=120) == 0, rerun.stderr.read()
    stats = server.stats()
    assert stats["repeats"] == before - kept <= conc
    assert stats["served"] == m + stats["repeats"]
    assert records(cache) == m


@pytest.mark.parametrize("bound", [1, 3])
def test_concurrency_bound_is_respected(server, endpoint_cfg, tmp_path, bound):
    server.control(delay=0.3)
    endpoint_cfg.max_concurrency = bound
    with open_client(endpoint_cfg, tmp_path / "cache") as llm:
        llm.chat(questions(3 * bound + 1))
    peak = server.stats()["max_in_flight"]
    assert peak <= bound
    assert peak == bound, f"{bound} allowed, only {peak} were in flight at once"


def test_progress_hook_sees_every_asked_request(server, endpoint_cfg, tmp_path):
    seen = []

    def progress(items):
        seen.append(len(items))
        for item in items:
            seen.append(item[0])
            yield item

    with open_client(endpoint_cfg, tmp_path / "cache") as llm:
        llm.chat(questions(2))
        llm.chat(questions(4), progress=progress)
    assert seen[0] == 2 and sorted(seen[1:]) == [0, 1]


def test_api_key_is_never_written(server, endpoint_cfg, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    server.control(fail=[[429, "0"], [503, None]])
    with open_client(endpoint_cfg, tmp_path / "cache") as llm:
        llm.chat(questions(3))
        llm.complete([ChatRequest(questions(1)[0], logprobs_of=(" yes",))])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-Key77")
    refused = "refused the API key in environment variable OPENAI_API_KEY"
    with pytest.raises(ConfigError, match=refused) as err, \
            open_client(endpoint_cfg, tmp_path / "cache") as llm:
        llm.chat(questions(1, "other"))
    assert "sk-wrong-Key77" not in str(err.value) + err.value.hint
    for key in (SERVER_KEY, "sk-wrong-Key77"):
        hits = [p for p in tmp_path.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
        assert hits == []
        assert key not in caplog.text
    assert records(tmp_path / "cache") == 4


def test_config_refuses_a_pasted_key_without_echoing_it():
    from orchestrator.api import ConfigError

    for pasted in ("sk-abc123", "gsk_LITKEY5Abc", "hf_AbCdEf123"):   # Groq's and HF's shapes
        with pytest.raises(ConfigError) as err:                       # passed before
            EndpointConfig(api_key_env=pasted)
        assert str(err.value) == ("api_key_env must be the NAME of an environment variable in "
                                  "capitals (like OPENAI_API_KEY), not the key itself")
    cfg = EndpointConfig()
    cfg.max_concurrency = 0
    with pytest.raises(ConfigError, match="^judge.max_concurrency must be >= 1, got 0$"):
        cfg.check("judge")


def test_config_as_a_nested_section_is_checked_at_plan_time_with_its_key_path():
    from dataclasses import dataclass

    from orchestrator.api import ConfigError
    from orchestrator.stage_config import check_step_config

    @dataclass
    class JudgedConfig:
        judge: EndpointConfig | None = None

    _, obj = check_step_config(JudgedConfig, {"judge": {"model": "m", "timeout": 30}}, "steps.s")
    assert isinstance(obj.judge, EndpointConfig) and obj.judge.timeout == 30.0
    for values, message in [
            ({"max_concurrency": 0}, "steps.s.judge.max_concurrency: expected a value >= 1"),
            ({"backend": "opnai"}, "steps.s.judge.backend: expected one of ['openai', "
                                   "'transformers', 'vllm'], got 'opnai' (did you mean 'openai'?)"),
            ({"top_p": 0}, "steps.s.judge.top_p: expected a value > 0"),
            ({"base_url": "localhost:8000"}, "steps.s: base_url: 'localhost:8000' is not an "
                                             "http(s) URL")]:
        with pytest.raises(ConfigError) as err:
            check_step_config(JudgedConfig, {"judge": values}, "steps.s")
        assert str(err.value).startswith(message)


def test_a_failure_mid_batch_keeps_the_answers_that_arrived(server, endpoint_cfg, tmp_path):
    from stages.lib.endpoint.openai_http import EndpointError

    server.control(fail=[None, None, None, [400, None]])
    endpoint_cfg.max_concurrency = 1
    with pytest.raises(EndpointError, match="answered HTTP 400"), \
            open_client(endpoint_cfg, tmp_path / "cache") as llm:
        llm.chat(questions(10))
    assert server.stats()["received"] == 4, "no request may start after the failure"
    assert records(tmp_path / "cache") == 3
    with open_client(endpoint_cfg, tmp_path / "cache") as llm:
        llm.chat(questions(10))
    assert server.stats()["served"] == 10 and server.stats()["repeats"] == 0
