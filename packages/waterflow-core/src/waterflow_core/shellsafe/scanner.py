"""The bash lexical scan behind :func:`~waterflow_core.shellsafe.render_for_shell`.

It follows bash's quoting states (to pick a reference form per expression), splits command text
into words and simple commands (to find the words :mod:`.commands` classifies) and tracks
arithmetic contexts, where every expression must be an integer.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from .commands import MARK, Verdict, Word, classify_command, classify_condition
from .errors import ShellQuotingError

_CMD, _ARRAY, _PARAM, _DQ, _SQ, _ANSI, _ARITH, _HEREDOC = (
    "cmd", "array", "param", "dq", "sq", "ansi", "arith", "heredoc"
)
_WORDY = (_CMD, _ARRAY)  # contexts made of words
FORMS = {
    _CMD: '"{name}"',
    _ARRAY: '"{name}"',
    _PARAM: '"{name}"',
    _DQ: "{name}",
    _SQ: "'\"{name}\"'",
    _ANSI: "'\"{name}\"$'",
    _HEREDOC: "{name}",
    _ARITH: "{name}",  # only integers get there, and arithmetic is not word-split
}
_BOUNDARY = " \t\n;&|()<>"
_KEYWORDS = frozenset(
    {"!", "{", "}", "if", "then", "elif", "else", "fi", "do", "done", "while", "until", "time", "esac"}
)
_REDIRECTIONS = ("&>>", "&>", "<<<", ">>", ">&", "<&", "<>", ">|", "<", ">")
_IO_NUMBER = re.compile(r"[0-9]+|\{[A-Za-z_][A-Za-z0-9_]*\}")
_ARRAY_OPENING = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")  # name=( starts a compound assignment
_OPEN_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]]*")  # `a[ 1 ]=x` is one word
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[-@*#?$!]")
_ARITHMETIC = "bash arithmetic ($(( )), (( )), $[ ])"


@dataclass
class _Ctx:
    kind: str
    closer: str = ""  # what ends this context: ")" "`" "}" "))" "]"
    depth: int = 0  # nested ( or { or [ of the same kind, so the right closer is found
    why: str = ""  # _ARITH: what kind of arithmetic, for the error message
    delimiter: str = ""  # heredoc
    strip_tabs: bool = False
    quoted: bool = False
    name_next: bool = False  # _PARAM: right after the name, where `:` may start an offset
    # _CMD and _ARRAY: the word being read, the words of the current simple command
    word_start: int | None = None
    words: list[Word] = field(default_factory=list)
    elements: tuple[Word, ...] = ()  # of a `name=( ... )` in the current word
    condition: bool = False  # inside [[ ]]
    redirect_target: bool = False  # the next word is a redirection's target
    cases: int = 0  # open `case ... esac`: a `)` there ends a pattern, not this context


@dataclass
class Scan:
    """A reference form per expression, and the expressions that must be integers (why, by index)."""

    forms: list[str]
    integers: dict[int, str]


class Scanner:
    """One pass over the text with every expression replaced by :data:`MARK`."""

    def __init__(self, text: str, labels: Sequence[str], positions: Sequence[int]) -> None:
        self.text = text
        self.labels = labels  # how errors name each expression
        self.positions = positions  # each expression's 1-based position in the template
        self.marks = [i for i, c in enumerate(text) if c == MARK]
        self.forms: list[str] = []
        self.integers: dict[int, str] = {}
        self.owners: list[_Ctx] = []  # the command each expression is a word of
        self.integer_names: set[str] = set()
        self.stack = [_Ctx(_CMD)]
        self.pending: list[_Ctx] = []  # heredocs declared on the current line; bodies start after newline

    def refuse(self, k: int, why: str) -> NoReturn:
        raise ShellQuotingError(f"{self.labels[k]} cannot be used {why}", position=self.positions[k])

    def scan(self) -> Scan:
        i, n, text, stack = 0, len(self.text), self.text, self.stack
        while i < n:
            top, c = stack[-1], text[i]
            nxt = text[i + 1] if i + 1 < n else ""
            if top.kind == _HEREDOC and (i == 0 or text[i - 1] == "\n"):
                after = self._heredoc_line(top, i)
                if after is not None:
                    i = after
                    continue
            if top.kind == _PARAM and top.name_next:
                top.name_next = False
                if c == ":" and nxt not in "-=?+":  # ${s:offset:length}
                    top.kind, top.closer, top.why = _ARITH, "}", "a substring offset or length (${s:offset:length})"
                    i += 1
                    continue
            if top.kind in _WORDY and top.word_start is None and c not in _BOUNDARY:
                if c == "#":
                    i = self._comment(i)
                    continue
                top.word_start = i
            if c == MARK:
                self._mark(top)
                i += 1
                continue
            if top.kind in (_SQ, _ANSI) and c == "'":
                stack.pop()
                i += 1
            elif top.kind == _SQ:
                i += 1
            elif c == "\\":
                if nxt == MARK:
                    self.refuse(len(self.forms), "right after a backslash (it would escape the quoting added here)")
                if top.kind in _WORDY and nxt == "\n" and i == top.word_start:
                    top.word_start = None  # a line continuation between words
                i += 2
            elif top.kind == _ANSI:
                i += 1
            elif c == "$" and nxt in ("(", "{", "["):
                i = self._dollar(i)
            elif c == "`":
                if top.closer == "`":
                    self._end_command(top, i)
                    stack.pop()
                else:
                    stack.append(_Ctx(_CMD, "`"))
                i += 1
            elif top.kind in (_DQ, _HEREDOC):
                if c == '"' and top.kind == _DQ:
                    stack.pop()
                i += 1
            elif top.kind == _ARITH:
                i = self._arith(top, i)
            elif c == "'" or (c == "$" and nxt == "'"):
                stack.append(_Ctx(_ANSI if c == "$" else _SQ))
                i += 2 if c == "$" else 1
            elif c == '"' or (c == "$" and nxt == '"'):
                stack.append(_Ctx(_DQ))
                i += 2 if c == "$" else 1
            elif top.kind == _PARAM:
                i = self._param(top, i)
            else:
                i = self._words(top, i)
        for ctx in reversed(stack):
            if ctx.kind == _CMD:
                self._end_command(ctx, n)
        return Scan(self.forms, self.integers)

    # -- expressions ----------------------------------------------------------------------

    def _mark(self, top: _Ctx) -> None:
        k = len(self.forms)
        for ctx in reversed(self.stack):
            if ctx.kind == _CMD:  # a command's argument: what it prints is its business
                self.owners.append(ctx)
                break
            if ctx.kind == _ARITH and k not in self.integers:
                self.integers[k] = ctx.why
        self.forms.append(FORMS[top.kind])

    def _apply(self, owner: _Ctx, verdicts: Iterable[Verdict]) -> None:
        """Apply ``owner``'s verdicts to its own expressions (not those of a nested ``$( )``).

        Within one command the first verdict for an expression wins; a refusal raises.
        """
        claimed: set[int] = set()
        for start, end, integer, why in verdicts:
            for k in range(bisect_left(self.marks, start), bisect_left(self.marks, end)):
                if k in claimed or self.owners[k] is not owner:
                    continue
                claimed.add(k)
                if not integer:
                    self.refuse(k, why)
                self.integers.setdefault(k, why)

    # -- lexical states -------------------------------------------------------------------

    def _heredoc_line(self, top: _Ctx, i: int) -> int | None:
        """At the start of a heredoc body line: the index after it when it is consumed here."""
        end = self.text.find("\n", i)
        end = len(self.text) if end < 0 else end
        line = self.text[i:end]
        if (line.lstrip("\t") if top.strip_tabs else line) == top.delimiter:
            self.stack.pop()
            if self.pending:
                self.stack.append(self.pending.pop(0))
            return end + 1
        if not top.quoted:
            return None  # the body expands like double quotes: scan it character by character
        if MARK in line:
            self.refuse(
                len(self.forms), "in a heredoc with a quoted delimiter (nothing expands there; unquote the delimiter)"
            )
        return end + 1

    def _comment(self, i: int) -> int:
        end = self.text.find("\n", i)
        end = len(self.text) if end < 0 else end
        # Nothing in a comment runs; a reference there is harmless, keep the forms aligned.
        count = self.text.count(MARK, i, end)
        self.forms.extend([FORMS[_CMD]] * count)
        self.owners.extend([next(ctx for ctx in reversed(self.stack) if ctx.kind == _CMD)] * count)
        return end

    def _dollar(self, i: int) -> int:
        """``$((``, ``$(``, ``$[``, ``${``."""
        text = self.text
        if text.startswith("$((", i):
            self.stack.append(_Ctx(_ARITH, "))", why=_ARITHMETIC))
            return i + 3
        if text[i + 1] == "(":
            self.stack.append(_Ctx(_CMD, ")"))
            return i + 2
        if text[i + 1] == "[":
            self.stack.append(_Ctx(_ARITH, "]", why=_ARITHMETIC))
            return i + 2
        j = i + 2
        if text[j : j + 1] in ("!", "#") and text[j + 1 : j + 2] not in ("}", ""):
            j += 1  # ${!name} indirection, ${#name} length
        if text[j : j + 1] == MARK:
            self.refuse(len(self.forms), "as a parameter name (${...}, ${!...} indirection): bash resolves "
                        "the value as a name, whose subscript is arithmetic")
        name = _PARAM_NAME.match(text, j)
        j = name.end() if name else j
        self.stack.append(_Ctx(_PARAM, "}", name_next=True))
        if text.startswith("[", j):
            self.stack.append(_Ctx(_ARITH, "]", why="an array subscript"))
            j += 1
        return j

    def _arith(self, top: _Ctx, i: int) -> int:
        text, c = self.text, self.text[i]
        if c in "([":
            top.depth += 1
        elif top.closer == "))" and text.startswith("))", i) and not top.depth:
            self.stack.pop()
            return i + 2
        elif c in ")]}":
            if top.depth and c != "}":
                top.depth -= 1
            elif top.closer == c:
                self.stack.pop()
        elif c in "'\"":
            self.stack.append(_Ctx(_SQ if c == "'" else _DQ))
        return i + 1

    def _param(self, top: _Ctx, i: int) -> int:
        c = self.text[i]
        if c == "{":
            top.depth += 1
        elif c == "}":
            if top.depth:
                top.depth -= 1
            else:
                self.stack.pop()
        return i + 1

    # -- words and commands ---------------------------------------------------------------

    def _words(self, top: _Ctx, i: int) -> int:
        """A character of a command (or of a compound assignment's element list) outside quotes."""
        text, c = self.text, self.text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if c in " \t" or (c == "\n" and top.kind == _ARRAY):
            start = top.word_start
            if not (top.kind == _CMD and start is not None and _OPEN_SUBSCRIPT.fullmatch(text, start, i)):
                self._end_word(top, i)
            return self._newline(i) if c == "\n" else i + 1
        if c == "\n":
            self._end_word(top, i)
            if not top.condition:
                self._end_command(top, i)
            return self._newline(i)
        if top.kind == _ARRAY:
            if c == ")":
                self._end_word(top, i)
                self.stack.pop()
                self.stack[-1].elements = tuple(top.words)
            elif c in _BOUNDARY:
                self._end_word(top, i)
            return i + 1
        if c == "(":
            start = top.word_start
            if start is not None and start < i and _ARRAY_OPENING.fullmatch(text, start, i):
                self.stack.append(_Ctx(_ARRAY, ")"))
            elif start is not None and start < i:  # `f(` of a function definition
                self._end_word(top, i)
                self._end_command(top, i)
                top.depth += 1
            elif nxt == "(" and not top.condition and [w.literal for w in top.words] in ([], ["for"]):
                self.stack.append(_Ctx(_ARITH, "))", why=_ARITHMETIC))
                return i + 2
            else:
                self._separate(top, i)
                top.depth += 1
            return i + 1
        if c == ")":
            self._separate(top, i)
            if top.depth:
                top.depth -= 1
            elif top.closer == ")" and not top.cases:
                self._end_command(top, i)
                self.stack.pop()
            return i + 1
        if c in "<>&" and not top.condition:
            return self._redirection(top, i)
        if c in _BOUNDARY:
            self._separate(top, i)
        return i + 1

    def _newline(self, i: int) -> int:
        if self.pending:
            self.stack.append(self.pending.pop(0))
        return i + 1

    def _separate(self, top: _Ctx, i: int) -> None:
        """An operator (``;``, ``&&``, ``|``, ``(``...): ends the word and, outside ``[[ ]]``, the command."""
        self._end_word(top, i)
        if not top.condition:
            self._end_command(top, i)

    def _redirection(self, top: _Ctx, i: int) -> int:
        text = self.text
        if text.startswith(("<(", ">("), i):  # process substitution: a word of its own
            if top.word_start is None:
                top.word_start = i
            self.stack.append(_Ctx(_CMD, ")"))
            return i + 2
        operator = next((op for op in _REDIRECTIONS if text.startswith(op, i)), "")
        if not operator:  # `&`, `&&`
            self._separate(top, i)
            return i + 1
        if top.word_start is not None and _IO_NUMBER.fullmatch(text, top.word_start, i):
            top.word_start = None  # `2>` `{fd}>`: part of the redirection, not an argument
        self._end_word(top, i)
        if text.startswith("<<", i) and not text.startswith("<<<", i):
            heredoc, i = self._heredoc_operator(i + 2)
            self.pending.append(heredoc)
            return i
        top.redirect_target = True
        return i + len(operator)

    def _end_word(self, top: _Ctx, i: int) -> None:
        if top.word_start is None:
            return
        word = Word(self.text[top.word_start : i], top.word_start, top.elements)
        top.word_start, top.elements = None, ()
        if top.redirect_target:
            top.redirect_target = False
            return
        if top.kind == _ARRAY:
            top.words.append(word)
        elif top.condition:
            if word.literal == "]]":
                self._apply(top, classify_condition(top.words))
                top.words, top.condition = [], False
            else:
                top.words.append(word)
        elif not top.words and word.literal in _KEYWORDS:  # `then let ...`: the command starts after it
            if word.literal == "esac" and top.cases:
                top.cases -= 1
        elif word.literal == "in" and len(top.words) == 2 and top.words[0].literal == "case":
            top.words, top.cases = [], top.cases + 1
        elif not top.words and word.literal == "[[":
            top.condition = True
        elif word.literal == "{" and len(top.words) == 2 and top.words[0].literal == "function":
            top.words = []
        else:
            top.words.append(word)

    def _end_command(self, top: _Ctx, i: int) -> None:
        self._end_word(top, i)
        if top.words:
            words = top.words
            verdicts = classify_condition(words) if top.condition else classify_command(words, self.integer_names)
            self._apply(top, verdicts)
        top.words, top.redirect_target = [], False

    def _heredoc_operator(self, i: int) -> tuple[_Ctx, int]:
        """Parse ``[-] [blanks] WORD`` after ``<<``; return the pending heredoc and the next index."""
        text = self.text
        strip_tabs = text.startswith("-", i)
        i += strip_tabs
        while i < len(text) and text[i] in " \t":
            i += 1
        word, quoted = [], False
        while i < len(text) and text[i] not in _BOUNDARY:
            c = text[i]
            if c in "'\"":
                close = text.find(c, i + 1)
                end = len(text) if close < 0 else close
                piece, after, quoted = text[i + 1 : end], end + 1, True
            elif c == "\\":
                piece, after, quoted = text[i + 1 : i + 2], i + 2, True
            else:
                piece, after = c, i + 1
            if MARK in piece:
                self.refuse(len(self.forms), "as a heredoc delimiter")
            word.append(piece)
            i = after
        return _Ctx(_HEREDOC, delimiter="".join(word), strip_tabs=strip_tabs, quoted=quoted), i
