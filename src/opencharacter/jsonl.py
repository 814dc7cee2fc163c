"""Append-only JSONL files that survive a kill at any moment.

Writing: each row is one ``json.dumps`` line, written and flushed at once, and fsynced at a
bounded interval, so a crash loses at most the rows of the last interval from the page cache
and a ``kill -9`` loses none that were written. Reading: a torn last line (one without its
newline: a write cut short) is ignored and reported, exactly as the writer removes it; a
corrupt line anywhere else is an error naming file and line, since it means the file was
damaged and silently skipping it would lose data.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from opencharacter.errors import DataError

logger = logging.getLogger(__name__)


def _drop_torn_tail(path: Path) -> int:
    """Cut a partial last line from ``path``; return how many bytes were removed."""
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        block = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        handle.truncate(keep)
        return size - keep


class JsonlWriter:
    """Append rows to a JSONL file, safe against crashes and kills.

    Args:
        path: the file; created with its parent folders if missing. A partial last line left
            by an earlier crash is removed before the first append.
        fsync_interval: seconds between fsyncs; 0 fsyncs every row.
        transform: applied to each serialised line before writing (secret redaction).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_interval: float = 1.0,
        transform: Callable[[str], str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and (torn := _drop_torn_tail(self.path)):
            logger.warning("%s: removed a torn last line (%d bytes) left by a crash", path, torn)
        self._handle: IO[bytes] = self.path.open("ab")
        self._fsync_interval = fsync_interval
        self._transform = transform
        self._last_sync = time.monotonic()

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row as a line and flush it; fsync if the interval has passed."""
        line = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        if self._transform is not None:
            line = self._transform(line)
        self._handle.write(line.encode() + b"\n")
        self._handle.flush()
        now = time.monotonic()
        if now - self._last_sync >= self._fsync_interval:
            os.fsync(self._handle.fileno())
            self._last_sync = now

    def close(self) -> None:
        """Flush, fsync and close the file."""
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_jsonl(
    path: str | os.PathLike[str], *, user_file: bool = False
) -> Generator[dict[str, Any]]:
    """Yield the JSON objects of ``path`` in order (nothing if the file does not exist).

    Args:
        path: the file.
        user_file: a file people wrote, not one of a run's: its last line needs no newline.
            In a run's files a line without its newline is a write cut short by a crash, and
            is ignored (the writer removes it before appending).

    Raises:
        DataError: a line other than a torn last one is not a JSON object; the message
            names the file and line.
    """
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n") and not user_file:
                # The writer removes an unterminated last line before appending, so the
                # reader must not count it either, even when it happens to parse.
                logger.warning("%s:%d: ignored a torn last line left by a crash", path, lineno)
                return
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                msg = (
                    f"{path}:{lineno}: corrupt row ({exc}). The file was damaged outside a "
                    "normal write; repair or delete that line, then run again."
                )
                raise DataError(msg) from exc
            if not isinstance(row, dict):
                msg = f"{path}:{lineno}: expected a JSON object per line, got {type(row).__name__}"
                raise DataError(msg)
            yield row
