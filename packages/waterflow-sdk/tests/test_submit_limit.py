"""``submit(..., limit=)`` sends the run's ``--limit`` in the JSON envelope."""

from __future__ import annotations

from waterflow_sdk import _protocol as p


def test_limit_travels_as_given_and_is_absent_without_one() -> None:
    assert p.submit_call("name: x", None, None, "web-*,group:db").json == {
        "workflow": "name: x",
        "limit": "web-*,group:db",
    }
    assert p.submit_call("name: x", None, None, ("a", "b")).json == {"workflow": "name: x", "limit": ["a", "b"]}
    assert "limit" not in (p.submit_call("name: x", None, None).json or {})
