"""A tiny OpenAI-compatible chat server for the endpoint tests (standard library http.server).

    python chat_server.py MODEL_DIR PORT_FILE [--name tiny]

Serves (after building a tiny random-init chat model into MODEL_DIR if it holds none, so the test
process need not import transformers) ``POST /v1/chat/completions`` (messages, max_tokens,
temperature, seed, n, stop, logprobs/top_logprobs, and vLLM's ``continue_final_message`` and
``repetition_penalty``) by running the checkpoint with transformers, and ``GET /v1/models``. If
``CHAT_SERVER_KEY`` is set in its environment, requests must carry ``Authorization: Bearer <that
key>`` (else 401, like api.openai.com).

Test hooks (JSON): ``GET /stats`` -> served (200 answers), repeats (answers to a body already
answered), received, active (in a handler), waiting (held by hang_after), in_flight (being
answered), max_in_flight, rejected; ``POST /control`` with ``fail`` (a list of
``[status, retry_after]`` returned to the next requests, ``null`` to answer one normally),
``delay`` (seconds each request is held in flight), ``refuse_prefix`` (answer
``continue_final_message`` with 400, as api.openai.com does), ``hang_after`` (requests after
that many answers wait, unanswered, until /reset); ``POST /reset`` clears counters and hooks
and lets waiting requests go (with a 503).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))   # the repo root


TEXTS = "What is the capital of France? Paris yes no [Relevant]"


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.model_lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            old = getattr(self, "release", None)
            self.served, self.received, self.rejected = 0, 0, 0
            self.seen: set[str] = set()
            self.repeats = 0
            self.in_flight = getattr(self, "in_flight", 0)   # these three survive a reset
            self.max_in_flight = 0
            self.active = getattr(self, "active", 0)     # requests in a handler
            self.waiting = getattr(self, "waiting", 0)   # of which held by hang_after
            self.fail: list = []
            self.delay, self.hang_after, self.refuse_prefix = 0.0, None, False
            self.release = threading.Event()
        if old is not None:
            old.set()

    def stats(self) -> dict:
        with self.lock:
            return {"served": self.served, "repeats": self.repeats, "received": self.received,
                    "max_in_flight": self.max_in_flight, "in_flight": self.in_flight,
                    "active": self.active, "waiting": self.waiting, "rejected": self.rejected}


def generate(gen, body: dict) -> dict:
    """The chat-completions answer for one request body, from the transformers generator."""
    import torch

    tok, messages, prefix, extra = gen.tokenizer, body["messages"], "", {}
    if body.get("continue_final_message"):     # vLLM's extension: continue the assistant text
        messages, prefix = messages[:-1], messages[-1]["content"]
        extra["prefixes"] = [prefix]
    if body.get("repetition_penalty") is not None:   # vLLM's extension
        extra["repetition_penalty"] = float(body["repetition_penalty"])
    n, k = int(body.get("n") or 1), int(body.get("top_logprobs") or 0)
    ids = gen.generate_ids([messages], max_new_tokens=int(body.get("max_tokens") or 16),
                           temperature=float(body.get("temperature") or 0.0), n=n,
                           seed=int(body.get("seed") or 0), **extra)[0]
    prompt = tok(gen.render(messages) + prefix, add_special_tokens=False)["input_ids"]
    choices = []
    for j, completion in enumerate(ids):
        text = tok.decode(completion, skip_special_tokens=True)
        for s in body.get("stop") or []:
            text = text.split(s)[0]
        choice = {"index": j, "message": {"role": "assistant", "content": text},
                  "finish_reason": "length" if len(completion) == body.get("max_tokens")
                  else "stop"}
        if body.get("logprobs") and completion:
            with torch.inference_mode():
                logits = gen.model(input_ids=torch.tensor([prompt + completion])).logits
            lp = torch.log_softmax(logits[0, len(prompt) - 1:-1].float(), dim=-1)
            content = []
            for t, tid in enumerate(completion):
                top = torch.topk(lp[t], k) if k else None
                content.append({"token": tok.decode([tid]), "logprob": float(lp[t, tid]),
                                "top_logprobs": [] if top is None else [
                                    {"token": tok.decode([int(i)]), "logprob": float(v)}
                                    for v, i in zip(top.values, top.indices)]})
            choice["logprobs"] = {"content": content}
        choices.append(choice)
    return {"id": "chatcmpl-test", "object": "chat.completion", "model": body["model"],
            "choices": choices}


def make_handler(gen, name: str, state: State):
    key = os.environ.get("CHAT_SERVER_KEY")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status: int, data: dict, headers: dict | None = None):
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for h, v in (headers or {}).items():
                self.send_header(h, v)
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self):
            if self.path == "/stats":
                return self.reply(200, state.stats())
            if self.path == "/v1/models":
                return self.reply(200, {"object": "list", "data": [{"id": name}]})
            self.reply(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            if self.path == "/reset":
                state.reset()
                return self.reply(200, {})
            if self.path == "/control":
                with state.lock:
                    state.fail = list(body.get("fail", state.fail))
                    state.delay = float(body.get("delay", state.delay))
                    state.hang_after = body.get("hang_after", state.hang_after)
                    state.refuse_prefix = body.get("refuse_prefix", state.refuse_prefix)
                return self.reply(200, {})
            if self.path != "/v1/chat/completions":
                return self.reply(404, {"error": {"message": f"no route {self.path}"}})
            self.chat(raw, body)

        def chat(self, raw: bytes, body: dict):
            with state.lock:
                state.received += 1
                state.active += 1
            try:
                self.answer(raw, body)
            finally:
                with state.lock:
                    state.active -= 1

        def answer(self, raw: bytes, body: dict):
            with state.lock:
                fail = state.fail.pop(0) if state.fail else None
                hang = state.hang_after is not None and state.served >= state.hang_after
                release = state.release
            if key and self.headers.get("Authorization") != f"Bearer {key}":
                return self.reply(401, {"error": {"message": "Incorrect API key provided"}})
            if fail:
                with state.lock:
                    state.rejected += 1
                return self.reply(fail[0], {"error": {"message": "injected"}},
                                  {"Retry-After": fail[1]} if fail[1] is not None else None)
            if body.get("model") != name:
                missing = f"The model `{body.get('model')}` does not exist."
                return self.reply(404, {"error": {"message": missing}})
            if state.refuse_prefix and "continue_final_message" in body:
                return self.reply(400, {"error": {"message": "Unrecognized request argument "
                                                             "supplied: continue_final_message"}})
            if hang:
                with state.lock:
                    state.waiting += 1
                release.wait(120)
                with state.lock:
                    state.waiting -= 1
                return self.reply(503, {"error": {"message": "released"}})
            with state.lock:
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                time.sleep(state.delay)
                with state.model_lock:
                    answer = generate(gen, body)
            finally:
                with state.lock:
                    state.in_flight -= 1
            digest = hashlib.sha256(raw).hexdigest()
            with state.lock:
                state.served += 1
                state.repeats += digest in state.seen
                state.seen.add(digest)
            self.reply(200, answer)

    return Handler


def main() -> None:
    from stages.lib.models.generation import TransformersGenerator

    model_dir, port_file = sys.argv[1], Path(sys.argv[2])
    name = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--name" else "tiny"
    if not (Path(model_dir) / "config.json").exists():
        from stages.lib.testing.tiny import tiny_causal_lm

        tiny_causal_lm(model_dir, texts=[TEXTS])
    gen = TransformersGenerator(model_dir)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(gen, name, State()))
    server.daemon_threads = True
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.replace(port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
