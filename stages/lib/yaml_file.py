"""A YAML file a user edits (a prompt file, few-shot examples, task instructions), read with a
one-line error that names the file, line and column of a syntax error."""

from __future__ import annotations

from pathlib import Path


def read_yaml(path: str | Path, what: str, hint: str | None = None):
    """The parsed content of the YAML file at ``path``; ``what`` is how an error names the file
    ("prompt file"). A one-line ``ConfigError`` for text that is not valid YAML or not UTF-8.

    >>> import os, tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    ...     _ = f.write("user: 'Q: {q}'\\nstyles: [a\\n")
    >>> try:
    ...     read_yaml(f.name, "prompt file")
    ... except Exception as e:
    ...     print(e.message.replace(f.name, "p.yaml"))
    prompt file p.yaml:3:1: not valid YAML (expected ',' or ']', but got '<stream end>')
    >>> _ = open(f.name, "wb").write(b"user: Q\\nfever: vrai ou faux\\xe9?\\n")
    >>> try:
    ...     read_yaml(f.name, "prompt file")
    ... except Exception as e:
    ...     print(e.message.replace(f.name, "p.yaml").split("; ")[0])
    prompt file p.yaml:2: not UTF-8 text (byte 0xE9: invalid continuation byte)
    >>> os.unlink(f.name)
    """
    import yaml

    from orchestrator.api import ConfigError

    data = Path(path).read_bytes()
    try:
        return yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{what} {path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02X}: "
                          f"{e.reason}); re-encode the file as UTF-8", hint=hint) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{what} {path}{at}: not valid YAML ({problem})", hint=hint) from None
