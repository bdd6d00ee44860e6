"""The option types of `waterflow` commands: Duration (`dev`, `agent`) and Moment (`list --since`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
import pytest
from click.testing import CliRunner

from waterflow_sdk.params import Duration, Moment


@click.command()
@click.option("--every", type=Duration(minimum=timedelta(hours=1)), default="30d")
def probe(every: timedelta) -> None:
    click.echo(int(every.total_seconds()))


@pytest.mark.parametrize(("given", "seconds"), [("1h30m", 5400), ("2d", 172800), ("3600", 3600)])
def test_durations_are_read_like_the_dsl(given: str, seconds: int) -> None:
    result = CliRunner().invoke(probe, ["--every", given])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(seconds)


def test_the_default_is_converted_too() -> None:
    assert CliRunner().invoke(probe, []).output.strip() == str(30 * 86400)


@pytest.mark.parametrize(
    ("given", "message"),
    [("5m", "must be at least 1h"), ("soon", "'soon' is not a duration like 30s, 5m, 12h or 30d")],
)
def test_bad_durations_name_the_option(given: str, message: str) -> None:
    result = CliRunner().invoke(probe, ["--every", given])
    assert result.exit_code == 2
    assert "Invalid value for '--every'" in result.output
    assert message in result.output


@click.command()
@click.option("--since", type=Moment())
def since_probe(since: datetime) -> None:
    click.echo(since.isoformat())


def test_moments_are_times_or_durations_ago() -> None:
    def given(text: str) -> datetime:
        result = CliRunner().invoke(since_probe, ["--since", text])
        assert result.exit_code == 0, result.output
        return datetime.fromisoformat(result.output.strip())

    assert given("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert given("2026-11-30T08:00:00+02:00") == datetime(2026, 11, 30, 6, tzinfo=UTC)
    # A duration is that long before now: between the moments just before and after the call.
    before = datetime.now(UTC)
    ago = given("2h")
    after = datetime.now(UTC)
    assert before - timedelta(hours=2) <= ago <= after - timedelta(hours=2)


@pytest.mark.parametrize("text", ["soon", "999999999d", "2026-13-01"])
def test_bad_moments_name_the_option(text: str) -> None:
    result = CliRunner().invoke(since_probe, ["--since", text])
    assert result.exit_code == 2
    assert "Invalid value for '--since'" in result.output and "is neither a time" in result.output
