"""Where a character of a scalar's value is in the YAML text: line and column of an offset.

An expression error knows its offset in the scalar's *value*; the user needs the line and column
in the *text*, where quotes, escapes, folded lines and block indentation make the two differ.
:class:`ScalarPlaces` undoes that for one document, one cursor per scalar.
"""

from __future__ import annotations

import bisect
import re

from .strict_yaml import Path, Position

__all__ = ["ScalarPlaces"]

_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # libyaml's line breaks
_SPECIAL = re.compile("[\r\n\x85\u2028\u2029'\\\\]")  # where a flow scalar's text and value differ
_FOLD = re.compile("[ \t\r\n\x85\u2028\u2029]*")
_ESCAPE_WIDTH = {"x": 4, "u": 6, "U": 10}  # \xXX, \uXXXX, \UXXXXXXXX; other escapes take two characters


class ScalarPlaces:
    """Line and column of offsets inside the scalars of one YAML text."""

    def __init__(self, text: str) -> None:
        self._text = text.removeprefix("\ufeff")  # libyaml counts columns without it
        self._starts = [0, *(m.end() for m in _BREAK.finditer(self._text))]  # each line's first index
        self._cursors: dict[Path, _FlowCursor | _BlockCursor] = {}

    def place(self, path: Path, start: Position, style: str | None, value: str, offset: int) -> Position:
        """The place of the 1-based character ``offset`` of ``value``, the scalar at ``path``
        written at ``start`` in ``style`` (as :meth:`.YamlDocument.scalar_style` gives it)."""
        text = self._text
        cursor = self._cursors.get(path)
        if cursor is None:
            line, column = start.line, start.column
            begin = self._starts[line - 1] + column - 1 if line <= len(self._starts) else len(text)
            cursor = _BlockCursor(text, begin, value) if style in ("|", ">") else _FlowCursor(text, begin, style)
            self._cursors[path] = cursor
        index = min(cursor.index(offset - 1), len(text))
        row = bisect.bisect_right(self._starts, index)
        return Position(row, index - self._starts[row - 1] + 1)


class _FlowCursor:
    """Maps offsets in the value of a plain or quoted scalar to indexes in the text. Offsets asked
    in increasing order (as problems in one text come) cost one walk in all."""

    def __init__(self, text: str, start: int, style: str | None) -> None:
        self.text = text
        self.style = style
        self.begin = start + (1 if style in ("'", '"') else 0)
        self.i, self.v = self.begin, 0  # an index in the text and the value offset it holds

    def index(self, target: int) -> int:
        """The index in the text of the 0-based character ``target`` of the value."""
        if target < self.v:
            self.i, self.v = self.begin, 0
        text, style, i, v = self.text, self.style, self.i, self.v
        while True:
            match = _SPECIAL.search(text, i)
            stop = match.start() if match else len(text)
            if target - v <= stop - i:  # in a run of characters that stand for themselves
                i, v = i + target - v, target
                break
            run_start, i, v = i, stop, v + stop - i
            if match is None:
                break
            char = text[i]
            if char == "\\" and style == '"':
                escaped_break = _BREAK.match(text, i + 1)
                if escaped_break:  # it and the next line's indentation vanish
                    i = escaped_break.end()
                    while i < len(text) and text[i] in " \t":
                        i += 1
                else:
                    i, v = i + _ESCAPE_WIDTH.get(text[i + 1 : i + 2], 2), v + 1
            elif char == "'" and style == "'":
                if not text.startswith("''", i):
                    break  # the closing quote
                i, v = i + 2, v + 1
            elif char in "'\\":
                i, v = i + 1, v + 1
            else:  # a line break, with the spaces around it and any blank lines: one fold
                while i > run_start and text[i - 1] in " \t":  # trailing spaces are part of it
                    i, v = i - 1, v - 1
                fold = _FOLD.match(text, i)
                end = fold.end() if fold else i + 1  # (it always matches)
                breaks = len(_BREAK.findall(text, i, end))
                width = 1 if breaks == 1 else breaks - 1  # a space, or the blank lines' breaks
                if target < v + width:
                    break
                i, v = end, v + width
        self.i, self.v = i, v
        return i


class _BlockCursor:
    """Maps offsets in the value of a ``|`` or ``>`` scalar to indexes in the text: each content
    line, without its indentation, is found in the value in turn."""

    def __init__(self, text: str, start: int, value: str) -> None:
        self.text = text
        self.value = value
        header = _BREAK.search(text, start)  # content starts on the line after the indicator
        self.begin = self.i = self.last = header.end() if header else len(text)
        self.p = 0  # how much of the value the lines before ``i`` hold

    def index(self, target: int) -> int:
        """The index in the text of the 0-based character ``target`` of the value (past the
        scalar: the end of its last content line)."""
        if target < self.p:
            self.i, self.p, self.last = self.begin, 0, self.begin
        text = self.text
        while self.i < len(text):
            brk = _BREAK.search(text, self.i)
            end = brk.start() if brk else len(text)
            line = text[self.i : end]
            content = line.lstrip(" ")
            if content:
                found = self.value.find(content, self.p)
                if found < 0:
                    break  # past the scalar
                indent = self.i + len(line) - len(content)
                if target < found + len(content):
                    return max(self.i, indent + target - found)
                self.p, self.last = found + len(content), indent + len(content)
            self.i = brk.end() if brk else len(text)
        return self.last
