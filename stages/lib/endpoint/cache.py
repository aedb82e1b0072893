"""On-disk request cache: one JSON file per answered request, written atomically.

Layout: ``<dir>/<key[:2]>/<key>.json`` holding ``{"key", "request", "reply"}``. A record is
written to a temporary file in the same folder, flushed and fsynced, then renamed over its
final name (``os.replace`` is atomic), so a process killed at any instant leaves either the
whole record or none; a leftover ``*.tmp`` file is never read. A record that does not parse or
whose key does not match (a disk fault, a hand edit) counts as a miss and is logged.

It holds what the caller sends and what the model answered, never credentials (the key is a
header of the HTTP request, not part of :class:`~stages.lib.endpoint.request.ChatRequest`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from stages.lib.endpoint.request import ChatReply

log = logging.getLogger(__name__)


class RequestCache:
    """``get(key)`` / ``put(key, request_record, reply)`` over a directory; thread-safe.

    ``earlier``: another cache read when this one misses (the step's own scratch, where answers
    were kept before they were shared); an answer there is copied here (an empty one is not).
    ``touch``: a hit sets the file's mtime, which ``rag gc`` reads as the answer's last use.
    ``refresh`` (a forced step): this cache is written but not read; ``earlier`` is read and
    written (what this forced attempt has asked, for its resume).
    """

    def __init__(self, root: str | Path, earlier: "RequestCache | None" = None,
                 touch: bool = False, refresh: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.earlier, self.touch, self.refresh = earlier, touch, refresh
        self._lock = threading.Lock()
        self._made: set[str] = set()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> ChatReply | None:
        """The cached reply for ``key``, or None (missing or unreadable)."""
        if self.refresh:
            return self.earlier.get(key) if self.earlier is not None else None
        found = self._read(key)
        if found is not None:
            if self.touch:
                try:
                    os.utime(self.path(key))
                except OSError:   # another user's answer in a shared cache: read, not marked
                    pass
            return found[0]
        found = self.earlier._read(key) if self.earlier is not None else None
        if found is None or found[0].unanswered:
            return None
        self.put(key, found[1], found[0])
        return found[0]

    def _read(self, key: str) -> tuple[ChatReply, dict] | None:
        """(reply, request record) of ``key``; None when missing or unreadable (logged)."""
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") != key:
                raise ValueError(f"holds key {data.get('key')!r}")
            return ChatReply.from_json(data["reply"]), data.get("request") or {}
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("request cache: ignoring unreadable %s (%s); asking again", path, err)
            return None

    def put(self, key: str, record: dict, reply: ChatReply) -> None:
        """Write one record atomically (temp file, fsync, rename); with ``refresh`` into
        ``earlier`` too."""
        self._write(key, record, reply)
        if self.refresh and self.earlier is not None:
            self.earlier._write(key, record, reply)

    def _write(self, key: str, record: dict, reply: ChatReply) -> None:
        folder = self.root / key[:2]
        if key[:2] not in self._made:
            folder.mkdir(exist_ok=True)
            with self._lock:
                self._made.add(key[:2])
        data = json.dumps({"key": key, "request": record, "reply": reply.to_json()},
                          ensure_ascii=False)
        tmp = folder / f"{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / f"{key}.json")

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json"))
