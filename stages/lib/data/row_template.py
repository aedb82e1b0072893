"""A step setting that renders a row with Python's ``str.format`` (``"{title} {text}"``): a
passage as an encoder or reranker reads it, a question as the retriever encodes it.

``RowTemplate`` is the setting's type: ``rag plan`` refuses a template that cannot fill a row
(a stray brace, a positional ``{0}`` or ``{}``, an attribute ``{title.upper}``), naming the
key, before anything runs. Which names a row has is known only from the data, so a name the
rows lack is the stage's error when it renders (:func:`unknown_field`).
"""

from __future__ import annotations

import string
from typing import Annotated

from pydantic import AfterValidator

from orchestrator.errors import ConfigError, did_you_mean

BRACES = "write {{ and }} for a literal brace"


def check_row_template(template: str) -> str:
    """``template`` if it can fill a row by field names; else ValueError saying why.

    >>> check_row_template("{title} {text}")
    '{title} {text}'
    >>> check_row_template("{answers[0]}")
    '{answers[0]}'
    >>> for bad in ("{title} {text", "{0} {text}", "Q: {}", "{title.upper}"):
    ...     try:
    ...         check_row_template(bad)
    ...     except ValueError as e:
    ...         print(str(e).replace("; write", ";\\n  write"))
    '{title} {text' is not a template: expected '}' before end of string;
      write {{ and }} for a literal brace
    '{0} {text}' fills {0} by position: name a field of the rows instead
    'Q: {}' fills {} by position: name a field of the rows instead
    '{title.upper}' reads an attribute ({title.upper}): name a field of the rows instead
    """
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        raise ValueError(f"{template!r} is not a template: {e}; {BRACES}") from None
    for name in fields:
        head = name.split("[", 1)[0]
        if not head or head.isdigit():
            raise ValueError(f"{template!r} fills {{{name}}} by position: name a field of "
                             f"the rows instead")
        if "." in head:
            raise ValueError(f"{template!r} reads an attribute ({{{name}}}): name a field of "
                             f"the rows instead")
    return template


RowTemplate = Annotated[str, AfterValidator(check_row_template)]


def unknown_field(setting: str, template: str, missing: str, fields) -> ConfigError:
    """The error for a template naming a field the rows lack.

    >>> e = unknown_field("steps.index.text_template", "{titel} {text}", "titel",
    ...                   ["id", "text", "title"])
    >>> print(e.message.replace(", which", ",\\n  which").replace("; ", ";\\n  "))
    steps.index.text_template: '{titel} {text}' uses {titel},
      which the rows lack (did you mean 'title'?);
      they have: id, text, title
    """
    names = sorted(fields)
    return ConfigError(f"{setting}: {template!r} uses {{{missing}}}, which the rows lack"
                       f"{did_you_mean(missing, names)}; they have: {', '.join(names)}",
                       hint=f"use those names in {setting}; {BRACES}")
