"""Output of a process: logged line by line as it arrives, its last bytes kept for the result."""

from __future__ import annotations

import codecs
import logging
from typing import Any

# Lines longer than this are logged in pieces, so output without newlines cannot grow memory.
MAX_LOG_LINE = 16 * 1024

Logger = logging.Logger | logging.LoggerAdapter[Any]


class StreamCapture:
    """One output stream: each line goes to ``log`` (``extra={"stream": name}``), the tail is kept.

    ``cap`` bytes of the end are kept (``truncated`` says whether anything before was dropped);
    ``log=None`` keeps the bytes without logging them (machine-readable output).
    """

    def __init__(self, stream: str, cap: int, log: Logger | None) -> None:
        self.stream = stream
        self.cap = cap
        self.log = log
        self.truncated = False
        self._kept = bytearray()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream."""
        self._kept += data
        # Trim in batches (at 2x the cap) so a chatty process does not cost a copy per chunk.
        if len(self._kept) > 2 * self.cap or (self.cap == 0 and self._kept):
            del self._kept[: len(self._kept) - self.cap]
            self.truncated = True
        if self.log is not None:
            self._lines(self._decoder.decode(data))

    def close(self) -> None:
        """The stream ended: log the last partial line, cut the tail to ``cap``."""
        if self.log is not None:
            self._lines(self._decoder.decode(b"", final=True))
            if self._partial:
                self._emit(self._partial)
                self._partial = ""
        if len(self._kept) > self.cap:
            del self._kept[: len(self._kept) - self.cap]
            self.truncated = True

    def text(self) -> str:
        """The kept tail as text (invalid UTF-8 replaced)."""
        data = bytes(self._kept)
        if self.truncated:  # the cut may have split a UTF-8 sequence: drop its continuation bytes
            data = data.lstrip(bytes(range(0x80, 0xC0)))
        return data.decode("utf-8", errors="replace")

    def _lines(self, text: str) -> None:
        if not text:
            return
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        for line in pieces:
            self._emit(line.removesuffix("\r"))
        while len(self._partial) > MAX_LOG_LINE:
            self._emit(self._partial[:MAX_LOG_LINE])
            self._partial = self._partial[MAX_LOG_LINE:]

    def _emit(self, line: str) -> None:
        assert self.log is not None
        self.log.info("%s", line, extra={"stream": self.stream})


def last_lines(text: str, count: int) -> list[str]:
    """The last ``count`` non-empty-ended lines of ``text`` (for error messages)."""
    return text.rstrip("\n").split("\n")[-count:] if text.strip() else []
