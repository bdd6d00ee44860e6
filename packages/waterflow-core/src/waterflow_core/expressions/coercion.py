"""GitHub's value model: kinds, loose coercions, truthiness, comparison and number formatting.

Expressions work on JSON-shaped Python data. ``None``, ``bool``, ``int``/``float``, ``str``,
sequences (``list``/``tuple``) and mappings are null, boolean, number, string, array and object;
anything else is an opaque object (truthy, equal only to itself, ``"Object"`` as text).
The rules follow GitHub's runner (``EvaluationResult`` / ``ExpressionUtility`` in actions/runner),
which in turn follows JavaScript's abstract equality, except that strings compare with .NET's
``OrdinalIgnoreCase`` and objects are never converted to primitives.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

__all__ = [
    "ARRAY",
    "BOOLEAN",
    "KIND_NAMES",
    "NULL",
    "NUMBER",
    "OBJECT",
    "STRING",
    "WHITESPACE",
    "FilteredArray",
    "equal",
    "fold",
    "format_number",
    "greater",
    "greater_or_equal",
    "integer_index",
    "is_array",
    "kind_of",
    "less",
    "less_or_equal",
    "literal_number",
    "parse_number",
    "to_number",
    "to_string",
    "truthy",
]

NULL, BOOLEAN, NUMBER, STRING, ARRAY, OBJECT = range(6)
KIND_NAMES = ("Null", "Boolean", "Number", "String", "Array", "Object")

# .NET's Char.IsWhiteSpace, which GitHub uses to trim strings before reading them as numbers.
WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_INF = math.inf
_NAN = math.nan
_INT32_MAX = 0x7FFFFFFF
_UINT32_MAX = 0xFFFFFFFF
# Integers below 10**15 print in full under .NET's "G15" format, so str() gives the same text.
_G15_EXACT = 10**15
# Integral values up to 2**53 are exact in a double, so a literal such as 3 can be an int.
_EXACT_INT = 2**53

# Double.TryParse with AllowLeadingSign | AllowDecimalPoint | AllowExponent (ASCII digits only).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")
_OCTAL_DIGITS = re.compile(r"[0-7]+")
# .NET Core also accepts these symbols, case-insensitively, when parsing a double.
_SYMBOLS = {
    "INFINITY": _INF,
    "+INFINITY": _INF,
    "-INFINITY": -_INF,
    "NAN": _NAN,
    "+NAN": _NAN,
    "-NAN": _NAN,
}


class FilteredArray(list):
    """The array a ``*`` produces: indexing it indexes every element and collects the hits.

    GitHub keeps this distinction at run time (``foo.*.name`` maps ``.name`` over the elements);
    it never leaves an evaluation, where it becomes a plain list.
    """

    __slots__ = ()


def kind_of(value: Any) -> int:
    """The GitHub kind of ``value`` (``NULL`` … ``OBJECT``)."""
    if value is None:
        return NULL
    cls = type(value)
    if cls is str:
        return STRING
    if cls is bool:
        return BOOLEAN
    if cls is int or cls is float:
        return NUMBER
    if cls is dict:
        return OBJECT
    if cls is list or cls is FilteredArray:
        return ARRAY
    return _kind_of_other(value)


def _kind_of_other(value: Any) -> int:
    # Subclasses (str and int enums, OrderedDict, ...) and foreign types: classify by ABC.
    if isinstance(value, str):
        return STRING
    if isinstance(value, Real):
        return NUMBER
    if isinstance(value, Mapping):
        return OBJECT
    if is_array(value):
        return ARRAY
    return OBJECT


def is_array(value: Any) -> bool:
    """Whether ``value`` is an array: a list, tuple or other sequence that is not text or bytes."""
    cls = type(value)
    if cls is list or cls is FilteredArray or cls is tuple:
        return True
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _plain_number(value: Any) -> int | float:
    """A number of a foreign numeric type (IntEnum, numpy, Fraction) as an int or float."""
    if isinstance(value, int):
        return int.__int__(value)
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return _NAN


def to_number(value: Any) -> int | float:
    """GitHub's number coercion: null 0, booleans 1/0, strings parsed, arrays and objects NaN."""
    if value is None:
        return 0
    cls = type(value)
    if cls is int or cls is float:
        return value
    if cls is bool:
        return 1 if value else 0
    if cls is str:
        return parse_number(value)
    kind = _kind_of_other(value)
    if kind == STRING:
        return parse_number(str.__str__(value))
    if kind == NUMBER:
        return _plain_number(value)
    return _NAN


def parse_number(text: str) -> float:
    """Read ``text`` as GitHub does (``ExpressionUtility.ParseNumber``); NaN when it is no number.

    Surrounding whitespace is ignored and the empty string is 0. Accepted: decimal notation with
    optional sign, fraction and exponent; ``Infinity``/``NaN`` (any case, optional sign); and
    ``0x``/``0o`` integers that fit 32 bits (read as a signed 32-bit value, as .NET does).
    """
    text = text.strip(WHITESPACE)
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text)
    symbol = _SYMBOLS.get(fold(text))
    if symbol is not None:
        return symbol
    if len(text) > 2 and text[0] == "0":
        marker = text[1]
        if marker == "x" and _HEX_DIGITS.fullmatch(text, 2):
            value = int(text[2:], 16)
        elif marker == "o" and _OCTAL_DIGITS.fullmatch(text, 2):
            value = int(text[2:], 8)
        else:
            return _NAN
        if value > _UINT32_MAX:
            return _NAN
        return float(value - (_UINT32_MAX + 1) if value > _INT32_MAX else value)
    return _NAN


def literal_number(text: str) -> int | float:
    """The value of a number literal; integral values come back as ``int`` so ``3`` stays ``3``."""
    value = parse_number(text)
    if value.is_integer() and -_EXACT_INT <= value <= _EXACT_INT:
        return int(value)
    return value


def format_number(value: float) -> str:
    """A number as GitHub writes it: .NET ``G15`` (15 significant digits), ``Infinity``, ``NaN``.

    Integral values have no fraction (``2``, not ``2.0``), negative zero is ``0``, and exponents
    look like ``1E+21`` / ``1E-05``.
    """
    if type(value) is int:
        if -_G15_EXACT < value < _G15_EXACT:
            return str(value)
        try:
            value = float(value)
        except OverflowError:
            return "Infinity" if value > 0 else "-Infinity"
    if math.isnan(value):
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == -_INF:
        return "-Infinity"
    if value == 0:
        return "0"
    # Python's "g" switches to exponent notation exactly where .NET's "G" does (exponent < -4
    # or >= precision) and also drops trailing zeros; only the exponent's letter differs.
    text = format(value, ".15g")
    mantissa, marker, exponent = text.partition("e")
    return f"{mantissa}E{exponent}" if marker else mantissa


def to_string(value: Any) -> str:
    """GitHub's string coercion: null ``""``, ``true``/``false``, G15 numbers, ``Array``/``Object``."""
    if value is None:
        return ""
    cls = type(value)
    if cls is str:
        return value
    if cls is bool:
        return "true" if value else "false"
    if cls is int or cls is float:
        return format_number(value)
    kind = kind_of(value)
    if kind == STRING:
        return str.__str__(value)
    if kind == NUMBER:
        return format_number(_plain_number(value))
    return "Array" if kind == ARRAY else "Object"


def truthy(value: Any) -> bool:
    """GitHub truthiness: null, false, 0, -0, NaN and ``''`` are false; everything else is true."""
    if value is None:
        return False
    cls = type(value)
    if cls is bool:
        return value
    if cls is str:
        return value != ""
    if cls is int:
        return value != 0
    if cls is float:
        return not (value == 0.0 or math.isnan(value))
    kind = _kind_of_other(value)
    if kind == STRING:
        return len(value) > 0
    if kind == NUMBER:
        number = _plain_number(value)
        return not (number == 0 or math.isnan(number))
    return True


class _FoldTable(dict[int, int]):
    """Code point -> its OrdinalIgnoreCase key, filled on first use by ``str.translate``."""

    def __missing__(self, code: int) -> int:
        char = chr(code)
        upper = char.upper()
        # .NET upper-cases one code point to one code point (simple case mapping) and, unlike
        # ICU, leaves the dotless i alone; a multi-character mapping (ß -> SS) means "no change".
        folded = ord(upper) if len(upper) == 1 and code != 0x131 else code
        self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """The key under which .NET's ``OrdinalIgnoreCase`` compares ``text``; same length as ``text``."""
    if text.isascii():
        return text.upper()
    return text.translate(_FOLD_TABLE)


def _compare_text(left: str, right: str) -> int:
    """-1, 0 or 1, comparing as .NET ``String.Compare(..., OrdinalIgnoreCase)``."""
    left, right = fold(left), fold(right)
    if left == right:
        return 0
    if not (left.isascii() and right.isascii()):
        # .NET orders UTF-16 code units; code point order differs above the surrogate range.
        left_units = left.encode("utf-16-be", "surrogatepass")
        right_units = right.encode("utf-16-be", "surrogatepass")
        return -1 if left_units < right_units else 1
    return -1 if left < right else 1


def _coerce_pair(left: Any, right: Any) -> tuple[int, Any, int, Any]:
    """Bring two values to a common kind where GitHub does (``EvaluationResult.CoerceTypes``)."""
    left_kind, right_kind = kind_of(left), kind_of(right)
    while left_kind != right_kind:
        if left_kind == NUMBER and right_kind == STRING:
            right, right_kind = to_number(right), NUMBER
        elif (left_kind == STRING and right_kind == NUMBER) or left_kind in (BOOLEAN, NULL):
            left, left_kind = to_number(left), NUMBER
        elif right_kind in (BOOLEAN, NULL):
            right, right_kind = to_number(right), NUMBER
        else:
            break
    if left_kind == right_kind and left_kind in (NUMBER, STRING):
        # Strip subclasses (enums) so comparisons use plain values.
        left, right = _plain(left, left_kind), _plain(right, right_kind)
    return left_kind, left, right_kind, right


def _plain(value: Any, kind: int) -> Any:
    cls = type(value)
    if cls is str or cls is int or cls is float:
        return value
    return str.__str__(value) if kind == STRING else _plain_number(value)


def equal(left: Any, right: Any) -> bool:
    """GitHub's ``==``: loose coercion, case-insensitive strings, objects equal only to themselves."""
    left_cls, right_cls = type(left), type(right)
    if left_cls is str and right_cls is str:
        return left == right or (len(left) == len(right) and fold(left) == fold(right))
    if (left_cls is int or left_cls is float) and (right_cls is int or right_cls is float):
        return left == right
    left_kind, left, right_kind, right = _coerce_pair(left, right)
    if left_kind != right_kind:
        return False
    if left_kind == NULL:
        return True
    if left_kind == STRING:
        return len(left) == len(right) and fold(left) == fold(right)
    if left_kind in (NUMBER, BOOLEAN):
        return left == right
    return left is right


def greater(left: Any, right: Any) -> bool:
    """GitHub's ``>``; false whenever the kinds differ after coercion or a side is NaN."""
    left_cls, right_cls = type(left), type(right)
    if (left_cls is int or left_cls is float) and (right_cls is int or right_cls is float):
        return left > right
    left_kind, left, right_kind, right = _coerce_pair(left, right)
    if left_kind != right_kind:
        return False
    if left_kind == NUMBER:
        return left > right
    if left_kind == STRING:
        return _compare_text(left, right) > 0
    if left_kind == BOOLEAN:
        return left and not right
    return False


def less(left: Any, right: Any) -> bool:
    """GitHub's ``<``; false whenever the kinds differ after coercion or a side is NaN."""
    left_cls, right_cls = type(left), type(right)
    if (left_cls is int or left_cls is float) and (right_cls is int or right_cls is float):
        return left < right
    left_kind, left, right_kind, right = _coerce_pair(left, right)
    if left_kind != right_kind:
        return False
    if left_kind == NUMBER:
        return left < right
    if left_kind == STRING:
        return _compare_text(left, right) < 0
    if left_kind == BOOLEAN:
        return right and not left
    return False


def greater_or_equal(left: Any, right: Any) -> bool:
    """GitHub's ``>=``, defined as ``==`` or ``>`` (so an object is ``>=`` itself)."""
    return equal(left, right) or greater(left, right)


def less_or_equal(left: Any, right: Any) -> bool:
    """GitHub's ``<=``, defined as ``==`` or ``<``."""
    return equal(left, right) or less(left, right)


def integer_index(value: Any) -> int | None:
    """The array position ``value`` selects: its number rounded down, or None when it selects none."""
    number = to_number(value)
    if math.isnan(number) or number < 0:
        return None
    if type(number) is not int:
        number = math.floor(number) if number != _INF else _INT32_MAX + 1
    return number if number <= _INT32_MAX else None
