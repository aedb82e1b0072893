"""A real OpenAI-compatible server on 127.0.0.1 (``chat_server.py`` in a subprocess) running a
tiny random-init chat model, shared by the endpoint tests of one session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
SERVER_KEY = "sk-test-Zq81xKey"


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory):
    """The server's model directory (the server builds it when it starts)."""
    return tmp_path_factory.mktemp("model") / "lm"


class Server:
    """Handle on the running server: its ``/v1`` URL and the test hooks."""

    def __init__(self, port: int):
        self.root = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.root}/v1"

    def _call(self, path: str, data: dict | None = None) -> dict:
        req = urllib.request.Request(self.root + path, method="POST" if data is not None else "GET",
                                     data=None if data is None else json.dumps(data).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def stats(self) -> dict:
        return self._call("/stats")

    def control(self, **hooks) -> None:
        self._call("/control", hooks)

    def reset(self) -> None:
        self._call("/reset", {})


def start_server(model: Path, folder: Path, key: str | None = None, name: str | None = None):
    """The OpenAI-compatible test server (``chat_server.py``) serving ``model`` (as ``name``,
    the model id clients ask for, when given), with API key ``key`` if any: (process, handle)."""
    port_file = folder / "port"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("CHAT_SERVER_KEY", None)
    if key:
        env["CHAT_SERVER_KEY"] = key
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("chat_server.py")),
                             str(model), str(port_file), *(["--name", name] if name else [])],
                            env=env, stdout=subprocess.DEVNULL,
                            stderr=open(folder / "server.log", "w"))
    deadline = time.monotonic() + 120
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"chat server did not start: {(folder / 'server.log').read_text()}")
        time.sleep(0.1)
    return proc, Server(int(port_file.read_text()))


@pytest.fixture(scope="session")
def _server_process(tiny_chat_model, tmp_path_factory):
    proc, server = start_server(tiny_chat_model, tmp_path_factory.mktemp("server"), SERVER_KEY)
    yield server
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def server(_server_process, monkeypatch):
    """The shared server with fresh counters and hooks; the client's key in OPENAI_API_KEY."""
    _server_process.reset()
    monkeypatch.setenv("OPENAI_API_KEY", SERVER_KEY)
    return _server_process


@pytest.fixture
def endpoint_cfg(server):
    """An EndpointConfig for the server (fast retries are the real code: Retry-After 0)."""
    from stages.lib.endpoint import EndpointConfig

    return EndpointConfig(base_url=server.base_url, model="tiny", api_key_env="OPENAI_API_KEY",
                          max_concurrency=4, timeout=30, max_retries=3, max_tokens=6)
