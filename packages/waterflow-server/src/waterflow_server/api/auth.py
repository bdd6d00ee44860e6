"""API tokens: where they come from, their scopes, and checking a presented one in constant time.

A token is a secret string with a name (shown in errors and logs instead of the secret) and a
scope: ``read`` tokens may only ``GET``; ``operator`` tokens may do everything. Tokens come from
``WATERFLOW_API_TOKEN`` (one operator token named ``default``) and/or a token file with one
``<name> <scope> <token>`` per line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

TOKEN_ENV = "WATERFLOW_API_TOKEN"  # noqa: S105 - the name of a variable, not a secret
TOKEN_FILE_ENV = "WATERFLOW_API_TOKEN_FILE"  # noqa: S105 - a variable name
MIN_TOKEN_LENGTH = 16
"""Shorter secrets are refused: a bearer token is the only thing between the network and the agents."""
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class Scope(StrEnum):
    """What a token may do."""

    READ = "read"
    OPERATOR = "operator"


class TokenConfigError(Exception):
    """The token configuration is unusable; the message names the file and line, never the secret."""


@dataclass(frozen=True)
class ApiToken:
    """One accepted token. Only the SHA-256 digest of the secret is kept."""

    name: str
    scope: Scope
    digest: bytes

    def __repr__(self) -> str:  # the digest is not the secret, but it has no business in logs either
        return f"ApiToken(name={self.name!r}, scope={self.scope.value!r})"

    @classmethod
    def create(cls, name: str, scope: Scope, secret: str) -> ApiToken:
        """A token from its secret (checked for length)."""
        if len(secret) < MIN_TOKEN_LENGTH:
            raise TokenConfigError(
                f"token {name!r} is shorter than {MIN_TOKEN_LENGTH} characters; "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return cls(name, scope, _digest(secret))


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def find_token(tokens: Iterable[ApiToken], presented: str) -> ApiToken | None:
    """The token whose secret is ``presented``, compared in constant time against every token."""
    digest = _digest(presented)
    found: ApiToken | None = None
    for token in tokens:
        # No early exit: the time taken does not depend on which token (if any) matched.
        if hmac.compare_digest(token.digest, digest):
            found = token
    return found


def read_token_file(path: Path) -> list[ApiToken]:
    """Tokens of a token file: ``<name> <scope> <token>`` per line, ``#`` comments, blank lines."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenConfigError(f"{path}: cannot read the token file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TokenConfigError(f"{path}: the token file is not UTF-8 text") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenConfigError(f"{path}: the token file is readable by other users; restrict it with: chmod 600 {path}")
    tokens: list[ApiToken] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        where = f"{path}:{number}"
        if len(fields) != 3:
            raise TokenConfigError(f"{where}: expected '<name> <scope> <token>' ({len(fields)} fields found)")
        name, scope, secret = fields
        if not set(name) <= _NAME_CHARS:
            raise TokenConfigError(f"{where}: token name {name!r} may only use letters, digits and . _ -")
        try:
            parsed = Scope(scope)
        except ValueError:
            raise TokenConfigError(f"{where}: scope must be 'read' or 'operator', not {scope!r}") from None
        try:
            tokens.append(ApiToken.create(name, parsed, secret))
        except TokenConfigError as exc:
            raise TokenConfigError(f"{where}: {exc}") from None
    if not tokens:
        raise TokenConfigError(f"{path}: the token file holds no token")
    return tokens


def load_tokens(environ: Mapping[str, str] | None = None, token_file: Path | None = None) -> list[ApiToken]:
    """Every configured token: ``WATERFLOW_API_TOKEN`` and the token file (argument or env)."""
    environ = os.environ if environ is None else environ
    tokens: list[ApiToken] = []
    secret = environ.get(TOKEN_ENV, "").strip()
    if secret:
        try:
            tokens.append(ApiToken.create("default", Scope.OPERATOR, secret))
        except TokenConfigError as exc:
            raise TokenConfigError(f"{TOKEN_ENV}: {exc}") from None
    file_name = token_file or (Path(environ[TOKEN_FILE_ENV]) if environ.get(TOKEN_FILE_ENV) else None)
    if file_name is not None:
        tokens += read_token_file(file_name)
    names = [token.name for token in tokens]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TokenConfigError(f"token name(s) used twice: {', '.join(duplicates)}")
    if len({token.digest for token in tokens}) != len(tokens):
        raise TokenConfigError("the same token secret is configured twice (names must map to distinct secrets)")
    return tokens
