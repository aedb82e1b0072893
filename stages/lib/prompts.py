"""Prompt files: every prompt template is a file a user can replace (docs/layout.md).

A prompt file is YAML with these keys (only ``user`` is required)::

    system: |-            # the system message (omitted: none)
      You are ...
    user: |-              # the user message, a str.format template: {question}, {passages}, ...
      Query: {question}

      {passages}
    passage: "{i}. Topic: {title}\\nContent: {text}"   # one passage, numbered from 1
    passages: "Retrieved Content:\\n{passages}"        # the passages joined by newlines
    no_passages: "Retrieved Content: None"              # when no passage is given
    styles:               # answer style per dataset name ({style}); matched as a whole word
      fever: Please answer with "SUPPORTS", "REFUTES" or "NEI" based on what you know.
      default: Please answer the question with a short phrase.

A stage takes the file as a :class:`PromptFile` input (a recipe source), so the file's content
is hashed into the cache key of every step that uses it: editing a prompt recomputes exactly
those steps. The input's type says which placeholders the stage fills in ``user`` (``fills``)
and which of them ``user`` must use (``needs``: a generator prompt without ``{passages}`` trains
and evaluates a model that never sees the passages), so ``rag plan`` refuses a prompt file with
bad YAML, an unknown key, a placeholder the stage does not fill or without one it needs before
any step runs, not when the step that reads it starts hours later.
The shipped prompts (``conf/prompts/<recipe>/``) are our own wording; released checkpoints can
be sensitive to the exact training prompt, so give the paper's text as your own file to evaluate
one.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from types import MappingProxyType
from typing import ClassVar, Mapping, Sequence

from orchestrator.api import ConfigError, File
from orchestrator.errors import did_you_mean
from stages.lib.chat import Message, message
from stages.lib.data.set_names import names_set

KEYS = ("system", "user", "passage", "passages", "no_passages", "styles")
PASSAGE_FIELDS = ("id", "title", "text", "score")
FILLED = {"passage": ("i", "title", "text", "id"), "passages": ("passages",)}  # by format_passages


@dataclass(frozen=True)
class Prompt:
    """A loaded prompt file (see the module docstring for the keys)."""

    user: str
    system: str | None = None
    passage: str = "{i}. {title}\n{text}"
    passages: str = "{passages}"
    no_passages: str = ""
    styles: dict[str, str] = field(default_factory=dict)
    path: str = ""
    fills: tuple[str, ...] = ()  # what the stage that loaded it fills in ``user`` (PromptFile)


def load_prompt(path: str | Path) -> Prompt:
    """The prompt file at ``path``; a one-line ``ConfigError`` naming the file and key otherwise."""
    p = Path(path)
    st = p.stat() if p.is_file() else None
    if st is None:
        raise ConfigError(f"prompt file {path}: not found", hint="see conf/prompts/ for examples")
    return _load(str(p), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _load(path: str, size: int, mtime_ns: int) -> Prompt:
    from stages.lib.yaml_file import read_yaml

    data = read_yaml(path, "prompt file", "fix the YAML there; see conf/prompts/ for examples")
    unknown = sorted(set(data) - set(KEYS)) if isinstance(data, dict) else []
    if unknown:
        raise ConfigError(f"prompt file {path}: unknown key {unknown[0]!r}"
                          f"{did_you_mean(str(unknown[0]), list(KEYS))}", hint="keys: " + ", ".join(KEYS))
    if not isinstance(data, dict) or not isinstance(data.get("user"), str):
        raise ConfigError(f"prompt file {path}: needs a 'user' template (a string)",
                          hint="keys: " + ", ".join(KEYS))
    for key in KEYS[:-1]:
        if key in data and data[key] is not None and not isinstance(data[key], str):
            raise ConfigError(f"prompt file {path}: '{key}' must be a string")
    styles = data.get("styles") or {}
    if not isinstance(styles, dict) or not all(isinstance(v, str) for v in styles.values()):
        raise ConfigError(f"prompt file {path}: 'styles' must map dataset names to strings")
    return Prompt(**{k: v for k, v in data.items() if k != "styles"},
                  styles={str(k): v for k, v in styles.items()}, path=path)


class PromptFile(File):
    """A prompt file input; a subclass names the placeholders its stage fills in ``user``
    (``fills``) and those ``user`` must use (``needs``).

    ``rag plan`` calls :meth:`check_source` on the recipe's file before any step runs, and
    :meth:`load` returns the :class:`Prompt`. A stage that declares a placeholder it never
    fills is caught when it runs (:func:`messages`), so ``fills`` cannot drift from the code.

    ``needs`` maps each placeholder without which the stage's result is meaningless (the
    generator's ``{passages}``, the judge's ``{response}``) to what is lost without it; it is
    opt-in per type (default: none) and a subset of ``fills`` (checked when the class is made).
    ``without`` says, for such a placeholder, what to do instead when leaving it out is meant
    (a closed-book baseline). With ``formats_passages`` (the stage fills ``{passages}`` with
    :func:`format_passages`, from the file's ``passage``/``passages``/``no_passages`` keys) a
    needed ``{passages}`` must also be in the ``passages`` key, where the joined passages go.

    >>> class QuestionPrompt(PromptFile):
    ...     fills = ("question", "style")
    ...     needs = {"question": "the model never sees the question"}
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    ...     _ = f.write("user: 'Q: {qestion}'")
    >>> def refusal(text):
    ...     _ = Path(f.name).write_text(text)
    ...     try:
    ...         QuestionPrompt.check_source(Path(f.name))
    ...     except ConfigError as e:
    ...         return e.message.split(": ", 1)[1]
    >>> print(refusal("user: 'Q: {qestion}'").replace(" (it", "\\n(it"))
    'user' uses {qestion}, which this stage does not fill (did you mean 'question'?)
    (it fills: question, style)
    >>> refusal("user: 'Answer briefly. {style}'")
    "'user' does not use {question}, so the model never sees the question"
    >>> Path(f.name).unlink()
    """

    fills: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[Mapping[str, str]] = MappingProxyType({})    # placeholder -> what is lost
    without: ClassVar[Mapping[str, str]] = MappingProxyType({})  # placeholder -> what instead
    formats_passages: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        stray = [n for n in (*cls.needs, *cls.without) if n not in cls.fills] \
            + [n for n in cls.without if n not in cls.needs]
        if stray:   # a stage bug, caught at import: it needs what it never fills
            raise TypeError(f"{cls.__qualname__}: needs/without name {{{stray[0]}}}, which is not "
                            f"in its fills {cls.fills} (without: only names in needs)")

    @classmethod
    def check_source(cls, path: Path) -> None:
        cls.check(load_prompt(path))

    @classmethod
    def check(cls, prompt: Prompt) -> None:
        """Refuse a placeholder the stage does not fill, then a needed one ``user`` lacks."""
        check_placeholders(prompt, cls.fills)
        try:
            check_needs(prompt, cls.needs, cls.without, cls.formats_passages)
        except ConfigError as e:   # the line of the template that lacks it
            key = "passages" if "'passages' does not use" in e.message else "user"
            raise _at_line(e, prompt.path, key, None) from None

    def load(self) -> Prompt:
        """The prompt, checked, carrying this type's ``fills``."""
        prompt = load_prompt(self.path)
        self.check(prompt)
        return Prompt(**{**prompt.__dict__, "fills": tuple(self.fills)})


def check_placeholders(prompt: Prompt, fills: tuple[str, ...]) -> None:
    """Refuse a template with a ``{name}`` its stage does not fill, or a stray brace
    (``system``, ``no_passages`` and ``styles`` are used as written, so any brace is fine there).
    """
    for key, names in {"user": fills, **FILLED}.items():
        text = getattr(prompt, key)
        try:
            template_fields(text, names, f"prompt file {prompt.path}: '{key}'")
        except ConfigError as e:   # the line inside the file, for an editor to jump to
            try:
                bad = "{" + sorted(placeholders(text) - set(names))[0]
            except ValueError:
                bad = None
            raise _at_line(e, prompt.path, key, bad) from None


def _at_line(e: ConfigError, path: str, key: str, bad: str | None) -> ConfigError:
    """``e`` with ``prompt file PATH:`` made ``PATH:LINE:`` (see :func:`template_line`)."""
    try:
        line = template_line(Path(path).read_text(encoding="utf-8"), key, bad)
    except (OSError, UnicodeDecodeError):
        line = None
    if line is None:
        return e
    return ConfigError(e.message.replace(f"prompt file {path}:", f"prompt file {path}:{line}:", 1),
                       hint=e.hint)


def template_line(text: str, key: str, bad: str | None) -> int | None:
    """The line (from 1) of the prompt file ``text`` where its top-level ``key`` goes wrong: the
    first line of the key's value that holds ``bad`` (the start of a placeholder, ``"{anwser"``),
    or with ``bad`` None the first line that is not a valid template by itself; else the key's
    own line. None when ``key`` is not written at the top of a line.

    >>> text = "system: Be brief.\\nuser: |-\\n  Q: {question}\\n  A: {anwser}\\npassage: '{i}'\\n"
    >>> template_line(text, "user", "{anwser")
    4
    >>> template_line("user: 'Q: {q'\\n", "user", None)
    1
    >>> template_line(text, "user", None), template_line(text, "passages", None)
    (2, None)
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(rf"{key}\s*:", line)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"[^\s#]", lines[i])),
               len(lines))
    for i in range(start, end):
        body = lines[i].split(":", 1)[1] if i == start else lines[i]
        if bad is not None and bad in body:
            return i + 1
        if bad is None:
            try:
                placeholders(body)
            except ValueError:
                return i + 1
    return start + 1


def template_fields(text: str, names, where: str) -> set[str]:
    """The ``{name}`` placeholders of ``text``, each one of ``names``; a one-line
    ``ConfigError`` starting with ``where`` for a stray brace or a name that is not filled.

    >>> sorted(template_fields("{passage} -> {query}", ("passage", "query", "i"), "file: 'x'"))
    ['passage', 'query']
    """
    try:
        used = placeholders(text)
    except ValueError as e:
        raise ConfigError(f"{where} is not a valid template ({e})",
                          hint="write {{ and }} for a literal brace") from None
    extra = sorted(used - set(names))
    if extra:
        near = did_you_mean(extra[0], list(names))
        raise ConfigError(f"{where} uses {{{extra[0]}}}, which this stage does not fill"
                          f"{near} (it fills: {', '.join(names) or 'nothing'})",
                          hint="use only those placeholders; write {{ and }} for a literal brace")
    return used


def check_needs(prompt: Prompt, needs: Mapping[str, str],
                without: Mapping[str, str] = MappingProxyType({}),
                formats_passages: bool = False) -> None:
    """Refuse a ``user`` template without a placeholder its stage needs (``PromptFile.needs``:
    name -> what is lost without it), naming the file, the placeholder and what to do.

    >>> try:
    ...     check_needs(Prompt(user="Q: {question}", path="gen.yaml"),
    ...                 {"passages": "the model never sees the passages"})
    ... except ConfigError as e:
    ...     print(e.message)
    prompt file gen.yaml: 'user' does not use {passages}, so the model never sees the passages
    """
    used = placeholders(prompt.user)
    for name, lost in needs.items():
        if name not in used:
            instead = f"; {without[name]}" if name in without else ""
            where = " where the passages go" if name == "passages" and formats_passages else ""
            raise ConfigError(f"prompt file {prompt.path}: 'user' does not use {{{name}}}, so "
                              f"{lost}", hint=f"add {{{name}}} to 'user'{where}{instead}")
    if formats_passages and "passages" in needs and "passages" not in placeholders(prompt.passages):
        raise ConfigError(f"prompt file {prompt.path}: 'passages' does not use {{passages}} (the "
                          f"passages joined, put into 'user' as {{passages}}), so "
                          f"{needs['passages']}",
                          hint="write e.g. passages: \"Retrieved Content:\\n{passages}\", or leave "
                               "the key out")


def fill(prompt: Prompt, template: str, key: str, **fields) -> str:
    """``template.format(**fields)``, with a one-line error naming the file, key and placeholder.

    >>> fill(Prompt(user="Q: {question}"), "Q: {question}", "user", question="who?")
    'Q: who?'
    """
    try:
        return template.format(**fields)
    except ValueError as e:
        raise ConfigError(f"prompt file {prompt.path}: '{key}' is not a valid template ({e})",
                          hint="write {{ and }} for a literal brace") from None
    except (KeyError, IndexError) as e:
        raise ConfigError(f"prompt file {prompt.path}: '{key}' uses {{{e.args[0]}}}, which this "
                          f"stage does not fill (it fills: {', '.join(sorted(fields))})") from None


def placeholders(template: str) -> set[str]:
    """The ``{name}`` fields of a template.

    >>> sorted(placeholders("{style}\\nQuery: {question}"))
    ['question', 'style']
    """
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def messages(prompt: Prompt, **fields) -> list[Message]:
    """The system message (if any) and the filled user message."""
    unfilled = set(prompt.fills) - set(fields)
    if unfilled:  # a stage bug: its PromptFile type promises a placeholder it does not fill
        raise RuntimeError(f"{prompt.path}: the stage declares it fills {sorted(unfilled)} "
                           f"but passed only {sorted(fields)}: fix its PromptFile.fills")
    user = message("user", fill(prompt, prompt.user, "user", **fields))
    return [message("system", prompt.system), user] if prompt.system else [user]


def format_passages(prompt: Prompt, docs: list[dict], ids: list[int] | None = None) -> str:
    """Passages as one block, numbered 1..k in the order given.

    With ``ids`` (1-based positions into ``docs``) only those passages are shown, in that order
    and renumbered 1..k. No passage gives ``no_passages``.

    >>> p = Prompt(user="", passage="{i}. Topic: {title}\\nContent: {text}",
    ...            passages="Retrieved Content:\\n{passages}", no_passages="Retrieved Content: None")
    >>> docs = [{"title": "A", "text": "a."}, {"title": "B", "text": "b."},
    ...         {"title": "C", "text": "c."}]
    >>> print(format_passages(p, docs, ids=[3, 1]))
    Retrieved Content:
    1. Topic: C
    Content: c.
    2. Topic: A
    Content: a.
    >>> format_passages(p, [])
    'Retrieved Content: None'
    """
    if ids is not None:
        bad = [i for i in ids if not 1 <= i <= len(docs)]
        if bad:
            raise ValueError(f"passage ids {bad} out of range 1..{len(docs)}")
        docs = [docs[i - 1] for i in ids]
    if not docs:
        return prompt.no_passages
    entries = [fill(prompt, prompt.passage, "passage", i=i, title=d.get("title") or "",
                    text=d.get("text") or "", id=d.get("id") or "")
               for i, d in enumerate(docs, start=1)]
    return fill(prompt, prompt.passages, "passages", passages="\n".join(entries))


def answer_style(prompt: Prompt, dataset: str, options: bool = False) -> str:
    """The answer style for a dataset name (or an id / file name that contains it).

    A style key matches when it names the set (:func:`~stages.lib.data.set_names.names_set`:
    a whole word of the name, so ``arc`` matches ``arc_challenge``, not ``ms_marco``); the first
    match in file order wins; otherwise, for a question with ``options``, the ``choices`` style,
    else ``default`` (or "").

    >>> p = Prompt(user="", styles={"fever": "F", "arc": "A", "choices": "C", "default": "D"})
    >>> answer_style(p, "fever_dev"), answer_style(p, "ARC-Challenge"), answer_style(p, "ms_marco")
    ('F', 'A', 'D')
    >>> answer_style(p, "medqa", options=True), answer_style(p, "medqa")
    ('C', 'D')
    """
    for key, style in prompt.styles.items():
        if key not in ("default", "choices") and names_set(key, dataset):
            return style
    if options and "choices" in prompt.styles:
        return prompt.styles["choices"]
    return prompt.styles.get("default", "")


def with_options(question: str, choices: Sequence[str]) -> str:
    """The question with its options after it, one line each, lettered from A (the letters
    the loader makes the golds of multiple-choice records); a question that lists them already
    (RAG-Instruct's ``eval_inputs`` writes them in) as it is.

    >>> with_options("Which is a metal?", ["wood", "iron"])
    'Which is a metal?\\nA: wood\\nB: iron'
    >>> with_options("Which?", []), with_options("Which?\\nA: wood", ["wood"])
    ('Which?', 'Which?\\nA: wood')
    """
    listed = "".join(f"\n{chr(ord('A') + i)}: {c}" for i, c in enumerate(choices))
    return question if question.endswith(listed) else question + listed


def generator_messages(prompt: Prompt, question: str, docs: list[dict], dataset: str,
                       choices: Sequence[str] = ()) -> list[Message]:
    """Messages asking the generator to answer ``question`` (with its ``choices`` after it,
    when it has options) from ``docs`` in the dataset's style (fields: ``question``,
    ``passages``, ``style``).

    >>> p = Prompt(user="{style} {question}", styles={"choices": "Give the letter.", "default": ""})
    >>> print(generator_messages(p, "Which?", [], "medqa", ["wood", "iron"])[-1]["content"])
    Give the letter. Which?
    A: wood
    B: iron
    """
    return messages(prompt, question=with_options(question, choices),
                    passages=format_passages(prompt, docs),
                    style=answer_style(prompt, dataset, options=bool(choices)))


def passage_fields(doc: dict) -> dict:
    """A retrieved passage reduced to the fields a prediction keeps.

    >>> passage_fields({"id": "d1", "title": "A", "text": "a.", "score": 0.5, "relevant": True})
    {'id': 'd1', 'title': 'A', 'text': 'a.', 'score': 0.5}
    """
    return {k: doc.get(k) for k in PASSAGE_FIELDS}
