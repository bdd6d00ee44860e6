"""The Duration option type shared by `waterflow dev` and `waterflow agent`."""

from __future__ import annotations

from datetime import timedelta

import click
import pytest
from click.testing import CliRunner

from waterflow_sdk.params import Duration


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
