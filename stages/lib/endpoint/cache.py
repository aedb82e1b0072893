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
    were kept before they were shared); a hit there is copied here. ``touch``: a hit sets the
    file's mtime, which ``rag gc`` reads as the answer's last use.
    """

    def __init__(self, root: str | Path, earlier: "RequestCache | None" = None,
                 touch: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.earlier, self.touch = earlier, touch
        self._lock = threading.Lock()
        self._made: set[str] = set()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> ChatReply | None:
        """The cached reply for ``key``, or None (missing or unreadable)."""
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") != key:
                raise ValueError(f"holds key {data.get('key')!r}")
            reply = ChatReply.from_json(data["reply"])
            if self.touch:
                os.utime(path)
            return reply
        except FileNotFoundError:
            return self._from_earlier(key)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("request cache: ignoring unreadable %s (%s); asking again", path, err)
            return None

    def _from_earlier(self, key: str) -> ChatReply | None:
        if self.earlier is None or not self.earlier.path(key).is_file():
            return None
        data = json.loads(self.earlier.path(key).read_text(encoding="utf-8"))
        reply = self.earlier.get(key)
        if reply is not None:
            self.put(key, data.get("request") or {}, reply)
        return reply

    def put(self, key: str, record: dict, reply: ChatReply) -> None:
        """Write one record atomically (temp file, fsync, rename)."""
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
