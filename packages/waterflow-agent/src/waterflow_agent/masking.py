"""Secret masking: every secret value, in the forms tools print it in, becomes ``***``.

Outputs, log lines, heartbeat details, error messages: whatever leaves the agent passes through a
:class:`SecretMasker`. What it masks (docs/concepts/security.md, ADR 0020):

- each secret of at least ``MIN_SECRET`` characters, each line of a multi-line one, its base64
  (standard and URL-safe alphabet, standalone and at each of the three byte alignments inside a
  longer stream), URL-encoded and JSON-escaped forms;
- a *fragment* of any of these, at least ``MIN_FRAGMENT`` characters long, at the start or end of
  a line: a node that cuts its output (long lines logged in pieces, an output tail, ``base64``
  wrapping at 76 columns) cuts it before the agent sees it, so the two halves of a secret arrive
  as the end of one line and the start of the next.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

MASK = "***"
MIN_SECRET = 4
"""Shorter values are not masked: replacing every ``on`` or ``42`` in every log would make logs and
outputs unreadable, and so short a value is guessed in a handful of tries anyway."""
MIN_FRAGMENT = 3
"""A cut can leave up to ``MIN_FRAGMENT - 1`` characters of a secret visible on each side."""
_MIN_DERIVED = 6
# An encoded form shorter than this (the base64 of a 4-character value at some alignment) would
# match inside unrelated base64 data far too often.
_MIN_LINE = 4
# Each line of a multi-line secret (a PEM key) is masked on its own too, because tools print them
# line by line; lines this short would mask ordinary text.
_URLSAFE = str.maketrans("+/", "-_")
_BASE64_SKIP = (0, 2, 3)
# Leading base64 characters that also carry bits of the bytes before the secret, by alignment.

T = TypeVar("T")


def secret_forms(value: str) -> set[str]:
    """The strings masked for one secret value (empty when it is shorter than ``MIN_SECRET``)."""
    if len(value) < MIN_SECRET:
        return set()
    forms = {value}
    if "\n" in value:
        forms.update(line.strip() for line in value.splitlines() if len(line.strip()) >= _MIN_LINE)
    derived = _base64_forms(value.encode("utf-8"))
    derived.update(urllib.parse.quote(value, safe=safe) for safe in ("", "/"))
    derived.add(urllib.parse.quote_plus(value))
    for ensure_ascii in (True, False):
        derived.add(json.dumps(value, ensure_ascii=ensure_ascii)[1:-1])
    forms.update(form for form in derived if len(form) >= _MIN_DERIVED)
    return forms


def _base64_forms(data: bytes) -> set[str]:
    whole = base64.b64encode(data).decode("ascii")
    forms = {whole}
    for offset, skip in enumerate(_BASE64_SKIP):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii").rstrip("=")
        # The last character also carries bits of whatever follows, unless the bytes end evenly.
        end = len(encoded) - (1 if (offset + len(data)) % 3 else 0)
        forms.add(encoded[skip:end])
    return forms | {form.translate(_URLSAFE) for form in forms}


class SecretSet:
    """A growing set of secret values and their masked forms (thread-safe).

    ``version`` changes whenever forms are added, so a :class:`SecretMasker` over the set notices
    values added after it was made (another step of the same run resolved a new secret).
    ``limit`` bounds the number of values kept.
    """

    def __init__(self, values: Iterable[str] = (), *, limit: int | None = None) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._forms: frozenset[str] = frozenset()
        self._limit = limit
        self.version = 0
        self.add(values)

    def add(self, values: Iterable[str]) -> bool:
        """Add maskable values (shorter ones are ignored); ``False`` if the limit refused some."""
        fresh = [v for v in values if len(v) >= MIN_SECRET and v not in self._values]
        if not fresh:
            return True
        with self._lock:
            fresh = [v for v in dict.fromkeys(fresh) if v not in self._values]
            room = len(fresh) if self._limit is None else max(0, self._limit - len(self._values))
            kept = fresh[:room]
            if kept:
                self._values.update(kept)
                self._forms = self._forms.union(*(secret_forms(v) for v in kept))
                self.version += 1
        return len(kept) == len(fresh)

    @property
    def forms(self) -> frozenset[str]:
        """Every string to mask."""
        return self._forms

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class _Compiled:
    pattern: re.Pattern[str] | None
    edge_forms: tuple[str, ...]
    grams: frozenset[str]
    """Every ``MIN_FRAGMENT``-long substring of the edge forms: a quick test before the search."""

    @classmethod
    def build(cls, forms: Iterable[str]) -> _Compiled:
        # Longest first, so a secret that contains another one is masked whole.
        ordered = sorted(set(forms), key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        edge_forms = tuple(f for f in ordered if "\n" not in f and len(f) > MIN_FRAGMENT)
        grams = frozenset(f[i : i + MIN_FRAGMENT] for f in edge_forms for i in range(len(f) - MIN_FRAGMENT + 1))
        return cls(pattern, edge_forms, grams)

    def text(self, text: str) -> str:
        if self.pattern is None:
            return text
        masked = self.pattern.sub(MASK, text)
        if "\n" not in masked:
            return self._edges(masked)
        return "\n".join(self._edges(line) for line in masked.split("\n"))

    def _edges(self, line: str) -> str:
        body = line.removesuffix("\r")
        if len(body) < MIN_FRAGMENT:
            return line
        head_cut = self._head(body) if body[:MIN_FRAGMENT] in self.grams else 0
        tail_cut = self._tail(body) if body[-MIN_FRAGMENT:] in self.grams else 0
        if not head_cut and not tail_cut:
            return line
        if head_cut + tail_cut >= len(body):
            return MASK + line[len(body) :]
        middle = body[head_cut : len(body) - tail_cut]
        return (MASK if head_cut else "") + middle + (MASK if tail_cut else "") + line[len(body) :]

    def _head(self, body: str) -> int:
        """Length of the longest proper suffix of a form that ``body`` starts with."""
        best = 0
        start = body[:MIN_FRAGMENT]
        for form in self.edge_forms:
            i = form.find(start, 1)
            while i != -1 and len(form) - i > best:
                if body.startswith(form[i:]):
                    best = len(form) - i
                    break
                i = form.find(start, i + 1)
        return best

    def _tail(self, body: str) -> int:
        """Length of the longest proper prefix of a form that ``body`` ends with."""
        best = 0
        for form in self.edge_forms:
            tail = body[-(len(form) - 1) :]
            prefix = form[:MIN_FRAGMENT]
            j = tail.find(prefix)
            while j != -1 and len(tail) - j > best:
                if form.startswith(tail[j:]):
                    best = len(tail) - j
                    break
                j = tail.find(prefix, j + 1)
        return best


class SecretMasker:
    """Replaces secrets (see the module docstring) with ``***``, as the sets it reads hold them now."""

    def __init__(self, *sources: SecretSet | Iterable[str]) -> None:
        self._sets = [s if isinstance(s, SecretSet) else SecretSet(s) for s in sources]
        self._versions: tuple[int, ...] = ()
        self._compiled = _Compiled.build(())
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self._current().pattern is not None

    def text(self, text: str) -> str:
        """``text`` with every secret replaced."""
        if not text:
            return text
        return self._current().text(text)

    def value(self, value: T) -> T:
        """A copy of a JSON-like value (dicts, lists, strings) with every string masked."""
        compiled = self._current()
        if compiled.pattern is None:
            return value
        return cast(T, _walk(compiled, value))

    def _current(self) -> _Compiled:
        versions = tuple(s.version for s in self._sets)
        if versions != self._versions:
            with self._lock:
                if versions != self._versions:
                    self._compiled = _Compiled.build(f for s in self._sets for f in s.forms)
                    self._versions = versions
        return self._compiled


def _walk(compiled: _Compiled, value: Any) -> Any:
    if isinstance(value, str):
        return compiled.text(value) if value else value
    if isinstance(value, Mapping):
        return {_walk(compiled, k): _walk(compiled, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_walk(compiled, v) for v in value)
    return value
