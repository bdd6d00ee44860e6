"""Opaque page tokens and the time bounds of ``GET /v1/workflows``.

A token is Temporal's own visibility page token plus how many runs of that page were already
returned, so a page can end in the middle of one of Temporal's pages (needed when runs are
filtered by name on the server). Tokens are URL-safe base64 of a small JSON document.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

NOT_ISSUED = "invalid page_token; pass back the next_page_token of a previous page"
MAX_SKIP = 10_000
"""More than any page of Temporal's this server asks for holds."""


@dataclass(frozen=True)
class PageToken:
    """Where the next page starts: Temporal's token (``None`` = first page) and a skip count."""

    temporal: bytes | None = None
    skip: int = 0

    def encode(self) -> str:
        """The token as handed to clients."""
        doc = {
            "t": base64.b64encode(self.temporal).decode("ascii") if self.temporal else None,
            "s": self.skip,
        }
        raw = json.dumps(doc, separators=(",", ":")).encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str | None) -> PageToken:
        """Parse a client's token; raises ``ValueError`` for anything this server did not issue."""
        if not token:
            return cls()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            doc = json.loads(raw)
        except (ValueError, RecursionError, binascii.Error):
            raise ValueError(NOT_ISSUED) from None
        if not isinstance(doc, dict) or set(doc) - {"t", "s"}:
            raise ValueError(NOT_ISSUED)
        t, skip = doc.get("t"), doc.get("s", 0)
        if not (t is None or isinstance(t, str)) or type(skip) is not int or not 0 <= skip <= MAX_SKIP:
            raise ValueError(NOT_ISSUED)
        try:
            temporal = base64.b64decode(t, validate=True) if t else None
        except (ValueError, binascii.Error):
            raise ValueError(NOT_ISSUED) from None
        return cls(temporal, skip)


def parse_timestamp(value: str | None, name: str) -> datetime | None:
    """``since``/``until``: an RFC 3339 timestamp or a date (UTC when no offset is given).

    Raises ``ValueError`` naming the parameter for anything else.
    """
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        # In UTC now: an offset that moves it past year 1 or 9999 fails here, not in the query.
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{name} must be an RFC 3339 timestamp such as 2026-11-30T08:00:00Z or a date such as 2026-11-30, "
            f"got {value[:60]!r}"
        ) from None
