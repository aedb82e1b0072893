"""A URL read from the environment (``base_url: ${oc.env:JUDGE_URL}``) keys its step by a digest
of the URL without its password: rotating the password recomputes nothing and no digest of it is
written down; another host still recomputes the step (secrets audit, left from session 38)."""

from __future__ import annotations

import json

from tests.conftest import rag
from tests.faults.test_secrets import TWO_LABELS, _recipe


def test_rotating_a_urls_password_recomputes_nothing(tmp_path, monkeypatch):
    recipe = _recipe(tmp_path, monkeypatch, TWO_LABELS)
    runs = tmp_path / "runs"
    for url, cache in (("http://judge:first-pw@10.0.0.5:8000/v1", "miss"),
                       ("http://judge:rotated-pw@10.0.0.5:8000/v1", "hit"),
                       ("http://judge:rotated-pw@10.0.0.6:8000/v1", "miss")):
        monkeypatch.setenv("RAGLINE_TEST_MODEL", url)
        assert rag("run", str(recipe), runs=runs) == 0
        status = json.loads((runs / "latest" / "status.json").read_text())
        assert status["steps"]["s1"]["cache"] == cache
        if cache == "miss":                                 # the stage got the URL it was given
            assert status["metrics"]["s1"]["judge"] == url


def test_a_password_or_user_name_holding_an_at_sign():
    """Review 44, finding 3: the user information ends at the authority's last ``@`` (as httpx
    reads it); a password ``p@ss`` kept ``@ss`` in the digest, and an e-mail user name kept the
    whole password there."""
    from orchestrator.secrets import keyed

    def key(url: str) -> dict:
        return keyed({"u": url}, {"u": url}, {"u": "${oc.env:URL}"})

    for first, rotated in (("http://judge:p@ss-1@10.0.0.5/v1", "http://judge:q@ss-2@10.0.0.5/v1"),
                           ("http://me@x.org:first@h/v1", "http://me@x.org:second@h/v1")):
        assert key(first) == key(rotated)
    assert key("http://me@x.org:pw@h/v1") != key("http://you@x.org:pw@h/v1")
