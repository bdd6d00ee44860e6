"""Errors of shell-safe rendering."""

from __future__ import annotations

from ..errors import ExpressionError


class ShellQuotingError(ExpressionError):
    """An expression sits where no quoting can keep its value from being read as code."""


class ShellValueError(ShellQuotingError):
    """An expression's value must be an integer where it is used (bash evaluates it as arithmetic)."""
