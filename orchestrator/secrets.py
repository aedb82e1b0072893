"""Values a recipe reads from the environment (``${oc.env:NAME}``): used, never written down.

An API key written as ``api_key: ${oc.env:OPENAI_API_KEY}`` must reach the stage, but must not
land in ``config.yaml``, a cache entry, a state file or a cache key (rotating a key must not
recompute anything). Composition resolves the config with a recording ``oc.env`` and returns the
key paths whose values came from the environment, each with a text that reads it again::

    {"steps.reward.api_key": "${oc.env:OPENAI_API_KEY}"}

Saved configs carry that text instead of the value (``redact``). The DAG leaves credentials
(``is_credential``: ``api_key``, ``token``...) out of cache keys and keys every other such value
by its digest (``keyed``), so a setting passed through the environment still recomputes what it
changes. A worker process turns the text back into the value from its own environment
(``reveal``), and a composition that read the environment is never remembered on disk.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any


def resolve_recording(cfg) -> tuple[dict, dict[str, str]]:
    """(``OmegaConf.to_container(cfg, resolve=True)``, secrets found in it: :func:`find`).

    >>> from omegaconf import OmegaConf
    >>> os.environ["RAGLINE_DOC_K"] = "run"
    >>> cfg = OmegaConf.create({"a": "${oc.env:RAGLINE_DOC_K}", "t": "x", "b": "run-${t}",
    ...                         "c": ["Bearer ${a}"]})
    >>> resolved, found = resolve_recording(cfg)
    >>> resolved["b"], found
    ('run-x', {'a': '${oc.env:RAGLINE_DOC_K}', 'c[0]': 'Bearer ${oc.env:RAGLINE_DOC_K}'})
    >>> del os.environ["RAGLINE_DOC_K"]
    """
    from omegaconf import OmegaConf
    from omegaconf.resolvers import oc

    seen: dict[str, str] = {}

    def env(key: str, default: Any = oc._DEFAULT_MARKER_):
        if key in os.environ:
            seen[key] = os.environ[key]
        return oc.env(key, default)

    OmegaConf.register_new_resolver("oc.env", env, replace=True)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        if not seen:
            return resolved, {}
        return resolved, find(cfg, OmegaConf.to_container(cfg, resolve=False), seen)
    finally:
        OmegaConf.register_new_resolver("oc.env", oc.env, replace=True)


def find(node, raw, seen: dict[str, str], path: str = "") -> dict[str, str]:
    """Key paths of the values whose resolution reads the environment, each with a text that
    reads it again (the value with what it read replaced by ``${oc.env:NAME}``).

    ``node`` is the config (an OmegaConf container, with the recording ``oc.env`` registered,
    which fills ``seen``), ``raw`` the same unresolved. Each interpolated value is resolved on
    its own, so a value that merely contains the same text as an environment variable
    (``run-${tag}`` next to ``${oc.env:LBL}`` = ``run``) is not taken for one.
    """
    out: dict[str, str] = {}
    if isinstance(raw, dict):
        for k, v in raw.items():
            out.update(_find_child(node, k, v, seen, f"{path}.{k}" if path else str(k)))
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            out.update(_find_child(node, i, v, seen, f"{path}[{i}]"))
    return out


def _find_child(node, key, raw, seen: dict[str, str], path: str) -> dict[str, str]:
    if isinstance(raw, (dict, list)):
        return find(node[key], raw, seen, path)
    if not (isinstance(raw, str) and "${" in raw):
        return {}
    seen.clear()
    value = node[key]                       # resolves this value alone, recording env reads
    if not seen or not isinstance(value, str):
        return {}
    text = value.replace("${", "\\${")    # a literal ${ (written \${) stays literal
    for name, read in seen.items():
        if read:
            text = text.replace(read.replace("${", "\\${"), f"${{oc.env:{name}}}")
    return {path: text}


CREDENTIAL = re.compile(r"key|token|secret|passw|auth|credential|cookie", re.IGNORECASE)


def is_credential(path: str) -> bool:
    """Whether a key path names a credential, by its last name (``api_key``, ``hf_token``,
    ``password``, ``headers.Authorization``): such a value read from the environment stays out
    of the cache key, so rotating it recomputes nothing.

    >>> [is_credential(p) for p in ("judge.api_key", "steps.s.label", "headers.Authorization")]
    [True, False, True]
    """
    names = [p for p in _parts(path) if isinstance(p, str)]
    return bool(names) and CREDENTIAL.search(names[-1]) is not None


# the names that hold a secret itself (not max_tokens, tokenizer, api_key_env: a variable's name)
LITERAL_SECRET = re.compile(r"(?:^|_)(?:api_?key|openai_key|access_key|secret_key|private_key|"
                            r"token|secret|password|passwd|credentials?|auth|authorization|"
                            r"cookie)$", re.IGNORECASE)
PLACEHOLDERS = {"empty", "none", "null", "dummy", "unused", "-"}   # vLLM's api_key: EMPTY, ...


def literal_credentials(config, secrets: dict[str, str], path: str = "") -> list[str]:
    """Key paths under ``config`` (a step's resolved config) whose name says they hold a secret
    itself (``api_key``, ``hf_token``, ``password``) and whose value is written in the recipe
    or an override, not read from the environment (``secrets``, relative paths): such a value
    would land in the run record and the cache, and be part of the cache key.

    >>> literal_credentials({"api_key": "sk-1", "max_tokens": 5, "llm": {"hf_token": ""},
    ...                      "api_key_env": "K", "b": {"password": "${oc.env:P}"},
    ...                      "headers": {"Authorization": "Bearer x"}, "v": {"api_key": "EMPTY"}},
    ...                     {"b.password": "${oc.env:P}"})
    ['api_key', 'headers.Authorization']
    """
    found: list[str] = []
    items = config.items() if isinstance(config, dict) else (
        enumerate(config) if isinstance(config, list) else ())
    for k, v in items:
        sub = f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}" if path else str(k)
        if isinstance(v, (dict, list)):
            found += literal_credentials(v, secrets, sub)
        elif (isinstance(v, str) and v.strip().lower() not in PLACEHOLDERS | {""}
              and sub not in secrets and isinstance(k, str) and LITERAL_SECRET.search(k)):
            found.append(sub)
    return found


def masked(override: str) -> str:
    """An override as messages quote it: the value of a key that holds a secret (or the name of
    the variable holding one, which a user may have given the key itself) as ``***``, and so
    each such key inside a ``{...}`` or ``[...]`` value.

    >>> masked("steps.j.llm.api_key_env=sk-abc"), masked("steps.j.max_tokens=5")
    ('steps.j.llm.api_key_env=***', 'steps.j.max_tokens=5')
    >>> masked("+api_key=sk-abc"), masked("+steps.j.llm={api_key: sk-abc, model: m}")
    ('+api_key=***', '+steps.j.llm={api_key: ***, model: m}')
    """
    key, eq, value = override.partition("=")
    if not eq:
        return override
    if _secret_name(key.rsplit(".", 1)[-1]):
        return f"{key}=***"
    if value.strip()[:1] in ("{", "["):
        return f"{key}={_FLOW_ITEM.sub(_mask_item, value)}"
    return override


def scrubbed(text: str, overrides) -> str:
    """``text`` (a message) with each of ``overrides`` that holds a secret quoted as
    :func:`masked` quotes it, and each secret value in it (4 characters or more) as ``***``,
    wherever the message repeats it (a hint that says what to write instead).

    >>> scrubbed("override '+api_key=sk-123': no; write key=sk-123", ["+api_key=sk-123", "a=1"])
    "override '+api_key=***': no; write key=***"
    >>> scrubbed("Hydra read sk-123 there", ["api_key='sk-123'"])
    'Hydra read *** there'
    """
    for override in overrides:
        shown = masked(override)
        if shown == override:
            continue
        text = text.replace(override, shown)
        key, _, value = override.partition("=")
        hidden = [value] if _secret_name(key.rsplit(".", 1)[-1]) else [
            m.group(3).strip() for m in _FLOW_ITEM.finditer(value) if _secret_name(m.group(1))]
        pieces = [*hidden, *(v.strip() for h in hidden for v in h.split(","))]   # a sweep
        for secret in [*pieces, *(p.strip("'\"") for p in pieces)]:   # as quoted and not
            if len(secret) >= 4:
                text = text.replace(secret, "***")
    return text


# a ``key: value`` item of a YAML flow value (Hydra's ``{a: 1, b: [x]}``); its value a plain
# scalar or a quoted one
_FLOW_ITEM = re.compile(r"""([\w-]+)(\s*:\s*)('[^']*'|"[^"]*"|[^,{}\[\]\s][^,{}\[\]]*)""")


def _secret_name(name: str) -> bool:
    name = name.lstrip("+~")
    return bool(LITERAL_SECRET.search(name)) or name.endswith("key_env")


def _mask_item(m: re.Match) -> str:
    return f"{m.group(1)}{m.group(2)}***" if _secret_name(m.group(1)) else m.group(0)


def unsaid(message: str, config: dict, secrets: dict[str, str]) -> str:
    """``message`` with each value read from the environment (``secrets``, relative to
    ``config``) replaced by the text that reads it: a validation error quotes the value it
    refuses, and a value from the environment may be a password in a URL. Quoted forms are
    replaced (``repr``, as messages quote, and plain quotes), longest value first; a value of 8
    characters or more wherever it appears, escaped or not.

    >>> unsaid("base_url: 'u:pw-12@host' is not an http(s) URL; n: got '3', not 3.5",
    ...        {"j": {"base_url": "u:pw-12@host"}, "n": "3"},
    ...        {"j.base_url": "${oc.env:URL}", "n": "${oc.env:N}"})
    "base_url: '${oc.env:URL}' is not an http(s) URL; n: got '${oc.env:N}', not 3.5"
    >>> pw = "pass\\word-42"                     # a backslash: repr escapes it
    >>> print(unsaid("got " + repr(pw), {"k": pw}, {"k": "${oc.env:K}"}))
    got '${oc.env:K}'
    """
    forms: dict[str, str] = {}
    for path, text in secrets.items():
        node = _at(config, path)
        value = str(node) if node is not _ABSENT else ""
        if not value:
            continue
        forms.update({repr(value): repr(text), f"'{value}'": f"'{text}'",
                      f'"{value}"': f'"{text}"'})
        if len(value) >= 8:
            forms.update({repr(value)[1:-1]: text, value: text})
    if not forms:
        return message
    # one pass, longest form first: a replacement is never searched again
    pattern = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.sub(pattern, lambda m: forms[m.group(0)], message)


def keyed(semantic: dict, config: dict, secrets: dict[str, str]) -> dict:
    """``semantic`` (a step's key config, credentials already left out) with every other value
    read from the environment as a SHA-256 digest of it: changing such a setting recomputes the
    step, as any setting does, and no file holds its value.

    A URL's password is a credential too: it is left out of the digest (rotating it recomputes
    nothing, and no digest of it is written down).

    >>> keyed({"label": "run", "n": 1}, {"label": "run", "n": 1}, {"label": "${oc.env:L}"})
    {'label': '${oc.env:L} sha256:acba25512100f80b', 'n': 1}
    """
    import hashlib

    values = {}
    for path, text in secrets.items():
        node = _at(config, path)
        if is_credential(path) or node is _ABSENT:
            continue
        value = without_password(node) if isinstance(node, str) else str(node)
        values[path] = f"{text} sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]}"
    return redact(semantic, values)


def without_password(value: str) -> str:
    """``value`` with the password of a URL in it (``scheme://user:password@host``) left out;
    any other text as it is.

    The user information ends at the authority's last ``@``, as HTTP clients read it: a
    password may hold an ``@``, a user name be an e-mail address.

    >>> without_password("http://judge:s3cret@10.0.0.5:8000/v1")
    'http://judge@10.0.0.5:8000/v1'
    >>> without_password("http://judge:p@ss@h/v1"), without_password("http://me@x.org:pw@h/v1")
    ('http://judge@h/v1', 'http://me@x.org@h/v1')
    >>> without_password("https://api.example.com/v1"), without_password("plain text")
    ('https://api.example.com/v1', 'plain text')
    """
    from urllib.parse import urlsplit

    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
        return value
    try:
        parts = urlsplit(value)
    except ValueError:            # e.g. an unbalanced IPv6 bracket: no URL, keyed as it is
        return value
    if parts.password is None:
        return value
    userinfo, _, host = parts.netloc.rpartition("@")
    return value.replace(parts.netloc, f"{userinfo.partition(':')[0]}@{host}", 1)


_ABSENT = object()


def _at(config, path: str):
    """The value at a key path (``a.b[0]``) of ``config``, or ``_ABSENT``."""
    node = config
    try:
        for p in _parts(path):
            node = node[p]
    except (KeyError, IndexError, TypeError):
        return _ABSENT
    return node


def _parts(path: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]


def redact(config: dict, secrets: dict[str, str]) -> dict:
    """A copy of ``config`` with each secret's value replaced by the text that reads it.

    >>> redact({"s": {"x": {"key": "s3cret", "k": 1}}}, {"s.x.key": "${oc.env:K}"})
    {'s': {'x': {'key': '${oc.env:K}', 'k': 1}}}
    """
    if not secrets:
        return config
    out = copy.deepcopy(config)
    for path, text in secrets.items():
        node = out
        *parents, leaf = _parts(path)
        try:
            for p in parents:
                node = node[p]
            node[leaf] = text
        except (KeyError, IndexError, TypeError):
            continue  # an override replaced the block: nothing of the secret is left there
    return out


def reveal(config: dict, secrets: dict[str, str]) -> dict:
    """``config`` with each secret text (relative key paths) resolved from this process's
    environment: what a worker does with a task file written from a redacted config."""
    if not secrets:
        return config
    from omegaconf import OmegaConf

    values = {}
    for path, text in secrets.items():
        try:
            values[path] = OmegaConf.create({"v": text}).v
        except Exception:  # noqa: BLE001 - an unset variable: OmegaConf wraps the KeyError
            import socket

            from orchestrator.errors import ConfigError

            unset = [n for n in re.findall(r"\$\{oc\.env:([A-Za-z_]\w*)", text)
                     if n not in os.environ]
            if not unset:
                raise ConfigError(f"{path}: {text} cannot be read again where this step runs "
                                  f"({socket.gethostname()})") from None
            raise ConfigError(f"{path}: environment variable {', '.join(unset)} is not set "
                              f"where this step runs ({socket.gethostname()})",
                              hint="set it in the workers' environment (the executor's env: "
                                   "list forwards the driver's)") from None
    return redact(config, values)
