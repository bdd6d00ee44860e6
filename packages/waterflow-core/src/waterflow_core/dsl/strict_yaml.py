"""Strict YAML loading at C speed: strictyaml's rules enforced on libyaml's event stream.

The contract (DESIGN.md, "DSL shape") is strictyaml's ``dirty_load(text, allow_flow_style=True)``:
flow style is fine, every scalar is a string, and anchors, aliases, tags, duplicate keys,
non-string keys and multiple documents are errors. strictyaml itself is ~50x too slow for the
parse budget, so PyYAML's libyaml binding (``yaml._yaml.CParser``) scans and parses, and we build
plain ``dict``/``list``/``str`` from its events. Events rather than ``compose``: composing
resolves every scalar's tag in Python and forgets anchors that are never aliased.

Two builders share the work. The fast one builds only data and gives up at the first sign of
trouble; valid documents (the common case, and the one with a time budget) never pay for
positions. The careful one records every key's and value's position and collects every problem;
it runs when the fast one gives up, and lazily when a valid document is first asked for a
position. docs/adr/0007-strict-yaml-fast-path.md has the measurements and the deviations.
"""

from __future__ import annotations

import bisect
import contextlib
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # PyYAML built without libyaml: the same events from pure Python, ~10x slower
    _Parser = yaml.BaseLoader  # type: ignore[assignment,misc]

from ..errors import ErrorItem, WorkflowValidationError, format_path

__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_BYTES", "Position", "YamlDocument", "load_strict_yaml"]

MAX_DOCUMENT_BYTES = 1 << 20
"""Default cap on the UTF-8 size of a document."""
MAX_DEPTH = 64
"""Default cap on nested mappings/lists; the top-level collection is level 1."""
MAX_ERRORS = 100
"""Stop collecting after this many problems, so hostile input cannot make reporting costly."""

Path = tuple[str | int, ...]
# Per path, 0-based (key line, key column, value line, value column, libyaml style). A list item's
# "key" is the item itself. One flat dict answers position queries in O(1).
_Record = tuple[int, int, int, int, str | None]

_Scalar, _Alias = yaml.ScalarEvent, yaml.AliasEvent
_MapStart, _MapEnd = yaml.MappingStartEvent, yaml.MappingEndEvent
_SeqStart, _SeqEnd = yaml.SequenceStartEvent, yaml.SequenceEndEvent
_DocStart, _StreamEnd = yaml.DocumentStartEvent, yaml.StreamEndEvent

_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
# libyaml breaks lines on CR LF (one break), CR, LF, NEL, LS and PS; its marks count them all, and
# so must every line and column we compute ourselves, or our places and libyaml's disagree.
_BREAK_CHARS = "\r\n\x85\u2028\u2029"
_TAB_INDENT = re.compile(r"(?:^|(?<=[\r\x85\u2028\u2029]))[ ]*\t", re.MULTILINE)
_TAB_INDENT_MESSAGE = "tab characters cannot be used for indentation"
# libyaml's wording for the mistakes people actually make, with what to do about them.
_HINTS = {
    "did not find expected key": "check the indentation",
    "did not find expected '-' indicator": "check the indentation",
    "mapping values are not allowed in this context": "quote a value that contains ': ', or check the indentation",
    "found character that cannot start any token": "quote the value",
    "found unexpected end of stream": "a quote is not closed",
}


class _Kind(enum.Enum):
    """What a builder is filling: the document's one value, a mapping or a list."""

    ROOT = "root"
    MAPPING = "mapping"
    LIST = "list"


class _Frame(NamedTuple):
    """A collection the careful builder returns to when the nested one ends."""

    container: Any
    path: Path
    kind: _Kind
    key: Any
    """The container's pending key: None, a ``str``, or ``_BadKey`` for a key already reported."""
    key_line: int
    key_col: int
    """Where that pending key was written (0-based), for the record of its value."""


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the YAML text; both fields are 1-based."""

    line: int
    column: int


class YamlDocument:
    """A loaded document: ``data`` plus where every key and value was written."""

    __slots__ = ("_max_depth", "_raw", "_records", "data")

    def __init__(self, data: Any, records: dict[Path, _Record] | None, raw: bytes = b"", max_depth: int = MAX_DEPTH):
        self.data = data
        """Nested ``dict[str, Any]`` / ``list[Any]`` / ``str``; dicts keep the written order."""
        self._records = records  # None until first needed: then rebuilt from the UTF-8 ``raw``
        self._raw = raw
        self._max_depth = max_depth

    def _record(self, path: Path) -> _Record:
        records = self._loaded_records()
        path = tuple(path)
        while path and path not in records:
            path = path[:-1]
        return records.get(path, (0, 0, 0, 0, None))

    def value_position(self, path: Path) -> Position:
        """Where the value at ``path`` starts; for a missing path, the deepest existing ancestor's
        value. ``()`` is the document's top-level value. Never raises."""
        record = self._record(path)
        return Position(record[2] + 1, record[3] + 1)

    def key_position(self, path: Path) -> Position:
        """Where the key of the last element of ``path`` starts (for a list index: the item
        itself); for a missing path, the deepest existing ancestor's key. Never raises."""
        record = self._record(path)
        return Position(record[0] + 1, record[1] + 1)

    def scalar_style(self, path: Path) -> str | None:
        """``None`` for a plain scalar (or a path that is no scalar), ``'`` / ``"`` for quoted,
        ``|`` / ``>`` for block scalars, whose value position is the ``|`` / ``>`` itself."""
        record = self._loaded_records().get(tuple(path))
        return (record[4] or None) if record is not None else None

    def _loaded_records(self) -> dict[Path, _Record]:
        if self._records is None:
            self._records = _positions_of(self._raw, self._max_depth)
        return self._records


def load_strict_yaml(
    text: str | bytes,
    *,
    source: str | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
) -> YamlDocument:
    """Load one YAML document with strictyaml's rules (flow style allowed); every scalar is ``str``.

    ``text`` is ``str`` or UTF-8 ``bytes``; an empty or comment-only document loads as ``""``.
    Raises :class:`WorkflowValidationError` listing every anchor, alias, tag, duplicate key,
    non-string key, merge key, tab indentation, extra document, too-deep nesting or oversize input
    found, each with a 1-based line and column; a YAML syntax error ends the scan. ``source``
    names the text in messages. No other exception escapes for any ``str`` or ``bytes`` input.
    """
    data, text = _to_utf8(text, source, max_bytes)
    problems = _Problems(text)
    try:
        root = _build_fast(data, max_depth)
    except (_GiveUp, yaml.YAMLError):
        pass
    else:
        if "\t" in text:  # the only check the fast builder leaves out
            problems.tabs(_tab_indentation(data, text))
        if not problems.items:
            return YamlDocument(root, None, data, max_depth)
        raise WorkflowValidationError(problems.error_items(), source=source)
    records: dict[Path, _Record] = {}
    root = _build_careful(data, text, records, problems, max_depth)
    if problems.items:
        raise WorkflowValidationError(problems.error_items(), source=source)
    return YamlDocument(root, records, data, max_depth)  # only if the fast pass was too cautious


# --- input ------------------------------------------------------------------------------------


def _to_utf8(text: str | bytes, source: str | None, max_bytes: int) -> tuple[bytes, str]:
    """Return (UTF-8 bytes for libyaml, BOM-less text for messages), enforcing the size cap.

    libyaml gets bytes so PyYAML does not encode a second time; decoding bytes ourselves rejects
    anything but UTF-8 (libyaml would take UTF-16 too) and pinpoints the bad byte.
    """

    def fail(index: int, in_text: str, message: str) -> WorkflowValidationError:
        line, col = _line_col0(in_text, index)
        item = ErrorItem(line=line + 1, column=col + 1, path="", message=message)
        return WorkflowValidationError([item], source=source)

    too_big = f"document is larger than the {max_bytes}-byte limit"
    if isinstance(text, str):
        if len(text) > max_bytes:  # a character is at least one byte: no need to encode to know
            raise fail(0, "", too_big)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates have no UTF-8 form
            code = ord(text[exc.start])
            raise fail(exc.start, text, f"invalid character U+{code:04X} (an unpaired surrogate)") from None
    elif isinstance(text, (bytes, bytearray, memoryview)):
        data = bytes(text)
        if len(data) > max_bytes:
            raise fail(0, "", too_big)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            prefix = data[: exc.start].decode("utf-8")
            raise fail(len(prefix), prefix, f"the document is not valid UTF-8 (byte 0x{data[exc.start]:02x})") from None
    else:
        raise TypeError(f"expected str or bytes, not {type(text).__name__}")
    if len(data) > max_bytes:
        raise fail(0, "", too_big)
    # libyaml skips a leading BOM and counts columns without it; so do our messages.
    return data, text.removeprefix("\ufeff")


def _line_col0(text: str, index: int) -> tuple[int, int]:
    """0-based line/column of a character index, counting line breaks as libyaml does."""
    before = text[:index].removeprefix("\ufeff")
    return _count_breaks(before), len(before) - _line_start(before, len(before))


def _count_breaks(text: str) -> int:
    """How many line breaks ``text`` holds for libyaml: CR LF is one, CR, LF, NEL, LS, PS one each."""
    return sum(text.count(c) for c in _BREAK_CHARS) - text.count("\r\n")


def _line_start(text: str, index: int) -> int:
    """Index of the first character of the line that holds ``text[index]`` (the search for the
    rarer breaks stops at the last LF, so it costs no more than the line)."""
    start = text.rfind("\n", 0, index) + 1
    return max(start, *(text.rfind(c, start, index) + 1 for c in "\r\x85\u2028\u2029"))


# --- the fast builder: data only -----------------------------------------------------------------


class _GiveUp(Exception):
    """The fast builder met something the careful builder must report."""


def _build_fast(data: bytes, max_depth: int) -> Any:
    """Build the data, or raise at the first anchor, alias, tag, bad key, extra document or
    over-deep nesting (or YAML error). One flat loop, current container in locals, no calls:
    this is the hot path, ~3 events per line."""
    parser = _Parser(data)
    get: Callable[[], Any] = parser.get_event  # each event's type is tested before its fields are read
    mapping, listing = _Kind.MAPPING, _Kind.LIST  # locals: compared on every event
    root: list[Any] = [""]  # an empty stream loads as "", as strictyaml's empty document does
    # The enclosing collections, innermost last. No pending key needs saving with one: a nested
    # collection is always the value of its parent's last key. Its kind is its type (the first,
    # ``root``, is the document's), so the frames are the containers themselves.
    stack: list[Any] = []
    cur: Any = root
    kind = _Kind.ROOT  # of ``cur``
    key: Any = None  # pending mapping key; None before the key is read
    documents = 0
    try:
        while True:
            event = get()
            etype = type(event)
            if etype is _Scalar:
                if event.anchor is not None or event.tag is not None:
                    raise _GiveUp
                value = event.value
                if kind is mapping:
                    if key is None:
                        if value in cur or (value == "<<" and not event.style):
                            raise _GiveUp
                        key = value
                    else:
                        cur[key] = value
                        key = None
                elif kind is listing:
                    cur.append(value)
                else:
                    root[0] = value
            elif etype is _MapStart or etype is _SeqStart:
                if event.anchor is not None or event.tag is not None:
                    raise _GiveUp
                new: Any = {} if etype is _MapStart else []
                if kind is mapping:
                    if key is None:  # a mapping or list used as a key
                        raise _GiveUp
                    cur[key] = new
                    key = None
                elif kind is listing:
                    cur.append(new)
                else:
                    root[0] = new
                stack.append(cur)
                if len(stack) > max_depth:
                    raise _GiveUp
                cur, kind, key = new, (mapping if etype is _MapStart else listing), None
            elif etype is _MapEnd or etype is _SeqEnd:
                cur = stack.pop()
                kind = (mapping if type(cur) is dict else listing) if stack else _Kind.ROOT
            elif etype is _StreamEnd:
                return root[0]
            elif etype is _Alias:
                raise _GiveUp
            elif etype is _DocStart:
                documents += 1
                if documents > 1:
                    raise _GiveUp
    finally:
        parser.dispose()


# --- the careful builder: positions and every problem ----------------------------------------------


class _Stop(Exception):
    """Scanning cannot usefully go on (nesting or problem cap reached)."""


class _Problems:
    """Problems as (line0, col0, path, message), plus the text to find anchors and tags in."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[int, int, Path, str]] = []

    def add(self, line0: int, col0: int, path: Path, message: str) -> None:
        self.items.append((line0, col0, path, message))
        if len(self.items) >= MAX_ERRORS:
            self.items.append((line0, col0, (), f"stopped after {MAX_ERRORS} problems"))
            raise _Stop

    def properties(self, event: Any, path: Path) -> None:
        """Report a node's anchor and/or tag, each at its own column when written on one line."""
        mark = event.start_mark
        found = _scan_properties(self.text, mark.index)
        if event.anchor is not None:
            self.add(mark.line, found.get("&", (mark.column, ""))[0], path, "anchors and aliases are not allowed")
        if event.tag is not None:
            column, written = found.get("!", (mark.column, ""))
            shown = _shorten(written or _show_tag(event.tag))
            self.add(mark.line, column, path, f"tags such as '{shown}' are not allowed; write the value as plain text")

    def tabs(self, places: list[tuple[int, int]]) -> None:
        for line, col in places[: max(MAX_ERRORS - len(self.items), 0)]:
            self.items.append((line, col, (), _TAB_INDENT_MESSAGE))

    def error_items(self) -> list[ErrorItem]:
        # A path through a rejected key ends where that key is: the key itself has no name.
        items = []
        for line, col, path, message in self.items:
            shown = format_path(path[: path.index(_BadKey)] if _BadKey in path else path)
            items.append(ErrorItem(line=line + 1, column=col + 1, path=shown, message=message))
        return items


def _scan_properties(text: str, index: int) -> dict[str, tuple[int, str]]:
    """The ``&anchor`` / ``!tag`` tokens written from ``index`` on: kind → (column0, token)."""
    line_start = _line_start(text, index)
    found: dict[str, tuple[int, str]] = {}
    i, end = index, len(text)
    while i < end and text[i] in "&!" and text[i] not in found:
        j = i
        while j < end and text[j] not in " \t\r\n":
            j += 1
        found[text[i]] = (i - line_start, text[i:j])
        while j < end and text[j] in " \t":
            j += 1
        i = j
    return found


def _shorten(value: str) -> str:
    """A key or tag as quoted in a message; a huge one must not bloat the error."""
    return value if len(value) <= 60 else value[:57] + "..."


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG_PREFIX) :] if tag.startswith(_YAML_TAG_PREFIX) else tag


class _RejectedKey:
    """Stands in for a key already reported (duplicate, merge, non-string): its value is built
    and checked, then thrown away with the whole document."""


_BadKey: Any = _RejectedKey  # Any: it stands in paths, whose parts are otherwise str | int


def _build_careful(data: bytes, text: str, records: dict[Path, _Record], problems: _Problems, max_depth: int) -> Any:
    """Build data and ``records``, adding every rule violation to ``problems``."""
    parser = None
    complete = False
    try:
        parser = _Parser(data)  # the pure-Python fallback already reads (and may fail) here
        root = _walk(parser.get_event, records, problems, max_depth)
        complete = True
    except _Stop:
        root = None
    except yaml.MarkedYAMLError as exc:
        root = None
        _syntax_problem(exc, problems, max_depth)
    except yaml.YAMLError as exc:  # ReaderError: a character YAML forbids, known by byte offset only
        root = None
        offset = getattr(exc, "position", 0) or 0
        prefix = data[:offset].decode("utf-8", "replace")
        line, col = _line_col0(prefix, len(prefix))
        code = getattr(exc, "character", None)
        what = f"character U+{code:04X}" if isinstance(code, int) else "character"
        message = f"the {what} is not allowed in YAML; write it as an escape in double quotes"
        problems.items.append((line, col, (), message))
    finally:
        if parser is not None:
            parser.dispose()
    if complete and "\t" in text:
        problems.tabs(_tab_indentation(data, text))
    return root


def _walk(get: Any, records: dict[Path, _Record], problems: _Problems, max_depth: int) -> Any:
    """The careful builder's loop: the fast one's, plus a path and the pending key's place."""
    mapping, listing = _Kind.MAPPING, _Kind.LIST  # locals: compared on every event
    root: list[Any] = [""]
    records[()] = (0, 0, 0, 0, None)
    stack: list[_Frame] = []
    cur: Any = root
    cur_path: Path = ()
    kind = _Kind.ROOT  # of ``cur``
    key: Any = None  # pending mapping key (``_BadKey`` once reported)
    key_line = key_col = documents = 0
    while True:
        event = get()
        etype = type(event)
        if etype is _DocStart:
            documents += 1
            if documents > 1:
                mark = event.start_mark
                problems.add(mark.line, mark.column, (), "only one YAML document is allowed; this starts a second one")
                raise _Stop
            continue
        if etype is _StreamEnd:
            return root[0]
        if etype is _MapEnd or etype is _SeqEnd:
            cur, cur_path, kind, key, key_line, key_col = stack.pop()
            continue
        if etype is not _Scalar and etype is not _MapStart and etype is not _SeqStart and etype is not _Alias:
            continue  # stream start, document end
        mark = event.start_mark
        attach = True
        if kind is mapping and key is None:  # this node is a key
            key_line, key_col = mark.line, mark.column
            if etype is _Scalar:
                key = event.value
                if event.anchor is not None or event.tag is not None:
                    problems.properties(event, (*cur_path, key))
                if key in cur:
                    first = records.get((*cur_path, key), (key_line, key_col))
                    where = f"first defined at line {first[0] + 1}, column {first[1] + 1}"
                    problems.add(key_line, key_col, (*cur_path, key), f"duplicate key '{_shorten(key)}' ({where})")
                    key = _BadKey
                elif key == "<<" and not event.style:
                    message = "merge keys ('<<') are not allowed; write the keys out"
                    problems.add(key_line, key_col, (*cur_path, key), message)
                    key = _BadKey
                continue
            key = _BadKey
            if etype is _Alias:
                problems.add(key_line, key_col, cur_path, "anchors and aliases are not allowed")
                continue
            what = "mapping" if etype is _MapStart else "list"
            problems.add(key_line, key_col, cur_path, f"a key must be plain text, not a {what}")
            attach = False  # still descend, to check the key's content; the parent then expects a value
        value: Any = event.value if etype is _Scalar else {} if etype is _MapStart else [] if etype is _SeqStart else ""
        style = event.style if etype is _Scalar else None
        if not attach:
            path = (*cur_path, _BadKey)
        elif kind is mapping:
            path = (*cur_path, key)
            cur[key] = value
            records[path] = (key_line, key_col, mark.line, mark.column, style)
            key = None
        elif kind is listing:
            path = (*cur_path, len(cur))
            cur.append(value)
            records[path] = (mark.line, mark.column, mark.line, mark.column, style)
        else:
            path = ()
            root[0] = value
            records[path] = (mark.line, mark.column, mark.line, mark.column, style)
        if etype is _Alias:  # never resolved, so no alias bombs; checking goes on with ""
            problems.add(mark.line, mark.column, path, "anchors and aliases are not allowed")
            continue
        if event.anchor is not None or event.tag is not None:
            problems.properties(event, path)
        if etype is not _Scalar:
            stack.append(_Frame(cur, cur_path, kind, key, key_line, key_col))
            if len(stack) > max_depth:
                problems.add(mark.line, mark.column, path, f"nesting deeper than {max_depth} levels")
                raise _Stop  # at once: the rest of a hostile document costs nothing
            cur, cur_path, kind, key = value, path, (mapping if etype is _MapStart else listing), None


def _positions_of(data: bytes, max_depth: int) -> dict[Path, _Record]:
    """Positions of a document that already loaded cleanly (the lazy half of YamlDocument)."""
    records: dict[Path, _Record] = {}
    # An error cannot happen for a document that loaded; positions must never raise.
    with contextlib.suppress(Exception):
        text = data.decode("utf-8").removeprefix("\ufeff")
        _build_careful(data, text, records, _Problems(text), max_depth)
    return records


def _syntax_problem(exc: yaml.MarkedYAMLError, problems: _Problems, max_depth: int) -> None:
    """One readable problem for libyaml's scanner/parser error (its marks are 0-based)."""
    mark = exc.problem_mark or exc.context_mark
    line, col, index = (mark.line, mark.column, mark.index) if mark is not None else (0, 0, -1)
    text = problems.text
    char = text[index] if 0 <= index < len(text) else ""
    if char == "\t":
        indenting = not text[_line_start(text, index) : index].strip(" ")
        message = _TAB_INDENT_MESSAGE if indenting else "a tab cannot be used here; use spaces"
        problems.items.append((line, col, (), message))
        return
    problem = exc.problem or "syntax error"
    if problem.startswith("exceeded maximum nesting depth"):  # libyaml's own cap (1000 levels)
        problems.items.append((line, col, (), f"nesting deeper than {max_depth} levels"))
        return
    hint = _HINTS.get(problem)
    if problem == "found unexpected end of stream" and "quoted" not in (exc.context or ""):
        hint = None  # the quote hint only fits an open quoted scalar
    if problem == "found character that cannot start any token" and char.strip():
        problem = f"found character '{char}' that cannot start any token"
    message = f"invalid YAML: {problem}"
    if exc.context:
        message += f" {exc.context}"
        context = exc.context_mark
        if context is not None and (context.line, context.column) != (line, col):
            message += f" (started at line {context.line + 1}, column {context.column + 1})"
    if hint:
        message += f"; {hint}"
    problems.items.append((line, col, (), message))


def _tab_indentation(data: bytes, text: str) -> list[tuple[int, int]]:
    """0-based places (at most MAX_ERRORS) of tabs in indentation that libyaml tolerated: flow and
    plain-scalar continuation lines, which strictyaml rejects. Tabs inside quoted and block
    scalars are content, so a second parse finds those scalars' spans; it only runs when such a
    line exists. Linear in the text: spans are in text order, so a bisect finds the one to test."""
    if _TAB_INDENT.search(text) is None:
        return []
    starts: list[int] = []
    ends: list[int] = []
    parser = _Parser(data)
    try:
        while True:
            event = parser.get_event()
            if type(event) is _StreamEnd:
                break
            if type(event) is _Scalar and event.style:
                start, end = event.start_mark, event.end_mark
                assert start is not None and end is not None  # the parser marks every event
                starts.append(start.index)
                ends.append(end.index)
    except yaml.YAMLError:
        pass  # reported by the caller's own parse; the spans found so far still count
    finally:
        parser.dispose()
    found: list[tuple[int, int]] = []
    line = last = 0
    for match in _TAB_INDENT.finditer(text):
        index = match.end() - 1
        span = bisect.bisect_left(starts, index) - 1
        if span >= 0 and index < ends[span]:
            continue
        line += _count_breaks(text[last:index])
        last = index
        found.append((line, index - match.start()))
        if len(found) >= MAX_ERRORS:
            break
    return found
