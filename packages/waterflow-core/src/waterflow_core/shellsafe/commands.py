"""Which words of a bash command bash reads as arithmetic, as a variable name or as code.

A ``$<< >>`` reference is always expanded as data, but some builtins then *evaluate* that data:
arithmetic (``let``, ``declare -i``, ``[[ -gt ]]``, array subscripts) runs command substitutions
hidden in ``a[$(cmd)]``, a variable name with a subscript is arithmetic too (``printf -v``,
``read``, ``unset``, ``[ -v ]``), and some words are code (``eval``, ``trap``, ``bash -c``).
:func:`classify_command` and :func:`classify_condition` return a :class:`Verdict` for each such
region of a command's words; the scanner applies them to the expressions inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

MARK = "\x00"  # stands for an expression while scanning; bash text cannot contain NUL

ARITHMETIC_TESTS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
DECLARATIONS = frozenset({"declare", "typeset", "local", "export", "readonly"})
ATTRIBUTE_DECLARATIONS = frozenset({"declare", "typeset", "local"})  # the ones with -i and -n
INTEGER_VARIABLES = frozenset({"RANDOM", "SRANDOM", "OPTIND", "HISTCMD"})  # assignments evaluate
CODE_VARIABLES = frozenset({"PS4"})  # expanded as code (command substitutions run) under set -x
SHELLS = frozenset({"bash", "sh", "dash", "ash", "ksh", "mksh", "zsh"})
PREFIXES = frozenset({"command", "builtin", "exec"})

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_WHY = (
    "as a variable name ({cmd}): bash evaluates a subscript in a name as arithmetic, which can run "
    "commands; write the name literally"
)


class Verdict(NamedTuple):
    """Expressions in ``text[start:end]`` must be integers (``integer``) or are refused; ``why`` says where."""

    start: int
    end: int
    integer: bool
    why: str


@dataclass(frozen=True)
class Word:
    """One shell word: its text (expressions are :data:`MARK`) and where it starts in the scanned text."""

    text: str
    start: int
    elements: tuple[Word, ...] = field(default=())
    """The element words of a compound assignment ``name=( ... )`` in this word."""

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @cached_property
    def _unquoted(self) -> tuple[str, list[int]]:
        # Quote characters dropped, each kept character's index in `text`, plus the end.
        plain, index, i = [], [], 0
        while i < len(self.text):
            c = self.text[i]
            if c == "\\" and i + 1 < len(self.text):
                i += 1
            elif c in "'\"":
                i += 1
                continue
            plain.append(self.text[i])
            index.append(i)
            i += 1
        return "".join(plain), [*index, len(self.text)]

    @property
    def plain(self) -> str:
        """The text without quote characters: what bash sees for a literal word."""
        return self._unquoted[0]

    @property
    def literal(self) -> str | None:
        """The word's value when nothing in it is expanded, else ``None``."""
        return None if any(c in self.text for c in (MARK, "$", "`")) else self.plain

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Absolute range of ``plain[start:end]`` in the scanned text."""
        index = self._unquoted[1]
        return self.start + index[start], self.start + index[end]

    def sub(self, start: int) -> Word:
        """The word from ``plain[start:]`` on (an option's glued argument, an assignment's value)."""
        begin = self._unquoted[1][min(start, len(self._unquoted[1]) - 1)]
        return Word(self.text[begin:], self.start + begin, self.elements)


def integer(word: Word, why: str) -> Verdict:
    return Verdict(word.start, word.end, True, why)


def refuse(word: Word, why: str) -> Verdict:
    return Verdict(word.start, word.end, False, why)


def classify_condition(words: Sequence[Word]) -> list[Verdict]:
    """``[[ ... ]]``: operands of ``-eq``-style tests are arithmetic, ``-v`` takes a name."""
    out: list[Verdict] = []
    for n, word in enumerate(words):
        if word.literal in ARITHMETIC_TESTS:
            why = f"an operand of [[ {word.literal} ]]"
            out.extend(integer(words[k], why) for k in (n - 1, n + 1) if 0 <= k < len(words))
        elif word.literal == "-v" and n + 1 < len(words):
            out.extend(name_word(words[n + 1], "[[ -v ]]"))
    return out


def classify_command(words: Sequence[Word], integer_names: set[str]) -> list[Verdict]:
    """A simple command's words (assignments, command name, arguments).

    ``integer_names`` holds the variables declared ``-i`` so far in the text: assignments to them
    are arithmetic, and a ``declare -i`` here adds to it.
    """
    out: list[Verdict] = []
    i = 0
    while i < len(words) and (assignment := _assignment(words[i])) is not None:
        out.extend(_assignment_verdicts(words[i], assignment, "an assignment", integer_names=integer_names))
        i += 1
    while i < len(words) and words[i].literal in PREFIXES:
        prefix = words[i].literal
        i += 1
        while i < len(words) and (words[i].literal or "").startswith("-"):
            i += 1 + (prefix == "exec" and "a" in (words[i].literal or ""))  # exec -a NAME
    if i >= len(words) or (name := words[i].literal) is None:
        return out  # no command, or a computed one: nothing known about its arguments
    args = words[i + 1 :]
    if name == "let":
        out.extend(integer(w, "an argument of let") for w in args)
    elif name in DECLARATIONS:
        out.extend(_declaration(name, args, integer_names))
    elif name in ("test", "["):
        out.extend(v for n, w in enumerate(args[:-1]) if w.literal == "-v" for v in name_word(args[n + 1], "[ -v ]"))
    elif name == "eval":
        out.extend(refuse(w, "as an argument of eval: eval runs its arguments as code") for w in args)
    elif name == "trap":
        out.extend(_trap(args))
    elif name.rsplit("/", 1)[-1] in SHELLS:
        out.extend(_shell(name.rsplit("/", 1)[-1], args))
    elif name in _OPTION_RULES:
        out.extend(_builtin_options(name, args))
    return out


def name_word(word: Word, cmd: str) -> list[Verdict]:
    """A word bash takes as a variable name: only a subscript may hold (integer) expressions."""
    opening, closing = word.text.find("["), word.text.rfind("]")
    verdicts = []
    if 0 <= opening < closing:
        verdicts.append(Verdict(word.start + opening + 1, word.start + closing, True, "an array subscript"))
    verdicts.append(refuse(word, _NAME_WHY.format(cmd=cmd)))
    return verdicts


# ------------------------------------------------------------------------------- assignments


class _Assignment(NamedTuple):
    name: str
    subscript: tuple[int, int] | None  # plain-text range inside the brackets
    value: int  # plain-text index where the value starts


def _assignment(word: Word) -> _Assignment | None:
    """``name=``, ``name+=``, ``name[sub]=``: quotes ignored, which errs towards finding one."""
    match = _NAME.match(word.plain)
    return None if match is None else _assignment_rest(match.group(), word.plain, match.end())


def _assignment_rest(name: str, plain: str, i: int) -> _Assignment | None:
    """The ``[sub]=`` / ``=`` / ``+=`` after a name ending at ``plain[i]``."""
    subscript = None
    if plain.startswith("[", i):
        depth, k = 0, i
        while k < len(plain):
            depth += {"[": 1, "]": -1}.get(plain[k], 0)
            if not depth:
                break
            k += 1
        if k >= len(plain):
            return None
        subscript, i = (i + 1, k), k + 1
    if plain.startswith("+=", i):
        return _Assignment(name, subscript, i + 2)
    if plain.startswith("=", i):
        return _Assignment(name, subscript, i + 1)
    return None


def _assignment_verdicts(
    word: Word,
    assignment: _Assignment,
    cmd: str,
    *,
    integer_names: set[str],
    integer_attr: bool = False,
    nameref: bool = False,
    declaration: bool = False,
) -> list[Verdict]:
    # The name itself cannot hold an expression (a word with one there is no assignment).
    out: list[Verdict] = []
    if assignment.subscript is not None:
        out.append(Verdict(*word.span(*assignment.subscript), True, "an array subscript"))
    value = word.sub(assignment.value)
    is_integer = integer_attr or assignment.name in integer_names or assignment.name in INTEGER_VARIABLES
    if word.elements:
        for element in word.elements:
            inner = _assignment_rest("", element.plain, 0)  # [sub]=value
            if inner is not None and inner.subscript is not None:
                out.append(Verdict(*element.span(*inner.subscript), True, "an array subscript"))
            if is_integer:
                out.append(integer(element, "an element of an integer array"))
    elif declaration and value.plain.startswith("("):
        out.append(refuse(value, f"in a quoted compound assignment ({cmd} \"a=(...)\"): {cmd} parses it as code"))
    elif nameref:
        out.append(refuse(value, f"as a nameref target ({cmd} -n): bash resolves it as a variable name, "
                                 "whose subscript is arithmetic"))
    elif is_integer:
        out.append(integer(value, f"a value assigned to the integer variable {assignment.name}"))
    elif assignment.name in CODE_VARIABLES:
        out.append(refuse(value, f"in {assignment.name}: bash expands it as code under set -x"))
    return out


def _declaration(cmd: str, args: Sequence[Word], integer_names: set[str]) -> list[Verdict]:
    out: list[Verdict] = []
    flags = ""
    operands = list(args)
    while operands and len(operands[0].plain) > 1 and operands[0].plain[0] in "-+":
        option = operands.pop(0)
        if option.plain == "--":
            break
        if MARK in option.text:
            out.append(refuse(option, f"as an option of {cmd}"))
        elif option.plain[0] == "-" and cmd in ATTRIBUTE_DECLARATIONS:
            flags += option.plain[1:]
    for word in operands:
        assignment = _assignment(word)
        if assignment is None:
            out.extend(name_word(word, cmd))
            if "i" in flags and word.literal and _NAME.fullmatch(word.literal):
                integer_names.add(word.literal)
            continue
        if "i" in flags:
            integer_names.add(assignment.name)
        out.extend(
            _assignment_verdicts(
                word, assignment, cmd, integer_names=integer_names,
                integer_attr="i" in flags, nameref="n" in flags, declaration=True,
            )
        )
    return out


# ------------------------------------------------------------------------- builtins' options

# getopt strings of builtins that take variable names, and what their option arguments are.
_OPTION_RULES: dict[str, tuple[str, frozenset[str], frozenset[str], bool]] = {
    # builtin: (optstring, options taking a name, options taking code, operands are names)
    "printf": ("v:", frozenset("v"), frozenset(), False),
    "read": ("a:d:ei:n:N:p:rst:u:", frozenset("a"), frozenset(), True),
    "mapfile": ("C:c:d:n:O:s:tu:", frozenset(), frozenset("C"), True),
    "readarray": ("C:c:d:n:O:s:tu:", frozenset(), frozenset("C"), True),
    "unset": ("fnv", frozenset(), frozenset(), True),
    "wait": ("fnp:", frozenset("p"), frozenset(), False),
}


def _builtin_options(cmd: str, args: Sequence[Word]) -> list[Verdict]:
    optstring, names, code, operands_are_names = _OPTION_RULES[cmd]
    out: list[Verdict] = []
    options, operands = _getopt(args, optstring)
    for letter, value in options:
        if letter == "?":
            out.append(refuse(value, f"as an option of {cmd}"))
        elif letter in names:
            out.extend(name_word(value, f"{cmd} -{letter}"))
        elif letter in code:
            out.append(refuse(value, f"as {cmd} -{letter}: {cmd} runs it as code"))
    if operands_are_names:
        for word in operands:
            out.extend(name_word(word, cmd))
    return out


def _getopt(args: Sequence[Word], optstring: str) -> tuple[list[tuple[str, Word]], list[Word]]:
    """Bash's builtin option parsing: ``([(letter, argument word)], operands)``.

    An expression where an option letter is expected comes back as letter ``?``.
    """
    takes_value = {c for n, c in enumerate(optstring) if optstring[n + 1 : n + 2] == ":"}
    options: list[tuple[str, Word]] = []
    i = 0
    while i < len(args):
        plain = args[i].plain
        if not plain.startswith("-") or plain == "-":
            break
        word, i = args[i], i + 1
        if plain == "--":
            break
        for n, letter in enumerate(plain[1:], 1):
            if letter == MARK:
                options.append(("?", word))
                break
            if letter in takes_value:
                if n + 1 < len(plain):
                    options.append((letter, word.sub(n + 1)))
                elif i < len(args):
                    options.append((letter, args[i]))
                    i += 1
                break
    return options, list(args[i:])


def _trap(args: Sequence[Word]) -> Iterable[Verdict]:
    operands = list(args)
    while operands and operands[0].literal in ("-l", "-p", "-P", "--"):
        if operands.pop(0).literal == "--":
            break
    if operands:
        yield refuse(operands[0], "as a trap action: the trap runs it as code")


def _shell(cmd: str, args: Sequence[Word]) -> Iterable[Verdict]:
    """``bash -c TEXT``: TEXT is code; the arguments after it are data (``$1``...)."""
    command_string, i = False, 0
    while i < len(args):
        plain = args[i].plain
        i += 1
        if plain == "--":
            break
        if plain.startswith("--"):  # --norc, --login...
            continue
        if len(plain) < 2 or plain[0] not in "-+" or MARK in plain:
            i -= 1
            break
        command_string = command_string or (plain[0] == "-" and "c" in plain)
        i += plain[-1] in "oO"  # -o OPTION takes the next word
    if command_string and i < len(args):
        yield refuse(args[i], f"in the command string of {cmd} -c: the shell runs it as code; pass the value "
                              f"as an argument after it ({cmd} -c 'echo \"$1\"' _ VALUE)")
