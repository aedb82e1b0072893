"""LLM endpoint client, measured: prints figures, asserts nothing.

    python bench/bench_endpoint.py                 # 64 requests, server latency 100 ms
    python bench/bench_endpoint.py --requests 200 --latency 0.2 --cached 20000

Starts the test server (tests/stages/lib/endpoint/chat_server.py: a tiny random-init model
behind an OpenAI-compatible route on 127.0.0.1) with an added latency per request, the stand-in
for a remote model's time to answer, and reports:

1. wall time and requests/s for ``--requests`` fresh requests at max_concurrency 1, 4 and 16
   (what concurrency buys when the server, not the client, is the wait);
2. the cost of a cached request: ``--cached`` records written by the client, then all asked again
   (the work a resumed step does for each call it already paid for), per request in microseconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def fresh(server, n: int, conc: int, folder: Path) -> float:
    from stages.lib.endpoint import EndpointConfig, open_client

    cfg = EndpointConfig(base_url=server.base_url, model="tiny", api_key_env=None,
                         max_concurrency=conc, max_tokens=4)
    start = time.perf_counter()
    with open_client(cfg, folder / f"fresh{conc}") as llm:
        llm.chat([[{"role": "user", "content": f"c{conc} q{i}"}] for i in range(n)])
    return time.perf_counter() - start


def cached(n: int, folder: Path) -> tuple[float, float]:
    """(seconds to write n records, seconds to answer n requests from the cache)."""
    from stages.lib.endpoint import ChatReply, ChatRequest, EndpointConfig
    from stages.lib.endpoint.cache import RequestCache
    from stages.lib.endpoint.client import EndpointClient
    from stages.lib.endpoint.request import request_key, request_record

    class NoServer:
        model = "tiny"

        def run(self, requests, on_reply):
            raise AssertionError("a cached request reached the backend")

        def close(self):
            pass

    cfg = EndpointConfig(model="tiny", api_key_env=None)
    reqs = [ChatRequest([{"role": "user", "content": f"question {i} " * 20}]).resolved(cfg)
            for i in range(n)]
    cache = RequestCache(folder / "cached")
    start = time.perf_counter()
    for r in reqs:
        cache.put(request_key("tiny", r), request_record("tiny", r), ChatReply(["answer " * 30]))
    wrote = time.perf_counter() - start
    start = time.perf_counter()
    EndpointClient(cfg, folder / "cached", NoServer()).complete(reqs)
    return wrote, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.1, help="seconds the server holds each")
    ap.add_argument("--cached", type=int, default=10000)
    args = ap.parse_args()
    from tests.stages.lib.endpoint.conftest import start_server

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        proc, server = start_server(folder / "lm", folder)
        try:
            server.control(delay=args.latency)
            print(f"{args.requests} fresh requests, server latency {args.latency * 1000:.0f} ms "
                  f"(tiny model, {os.cpu_count()} CPUs):")
            for conc in (1, 4, 16):
                sec = fresh(server, args.requests, conc, folder)
                peak = server.stats()["max_in_flight"]
                server.reset()
                server.control(delay=args.latency)
                print(f"  max_concurrency {conc:2d}: {sec:6.2f} s  {args.requests / sec:6.1f} "
                      f"requests/s  (peak in flight at the server: {peak})")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        wrote, read = cached(args.cached, folder)
        print(f"{args.cached} cached requests: written in {wrote:.2f} s "
              f"({wrote / args.cached * 1e6:.0f} us each, fsync included); answered from the "
              f"cache in {read:.2f} s ({read / args.cached * 1e6:.0f} us each)")


if __name__ == "__main__":
    main()
