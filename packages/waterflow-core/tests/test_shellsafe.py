"""render_for_shell against real bash: hostile values are printed literally and run nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.shellsafe import ShellQuotingError, render_for_shell, to_shell_string

PAYLOADS = [
    "'; touch pwned-sq; echo '",
    "$(touch pwned-cmdsub)",
    "`touch pwned-backtick`",
    '"; touch pwned-dq; echo "',
    "a\nb\n; touch pwned-newline",
    "*",
    "${HOME} $HOME \\ \\\\ $'\\x41' ~ !! >out-file < /etc/passwd | tee pwned-pipe",
    "EOF\ntouch pwned-heredoc\nEOF",
    "  leading and trailing  ",
    "",
]

# (template, what bash must print for value V)
STATES = {
    "unquoted": ("printf '[%s]\\n' $<< inputs.p >>", "[{v}]\n"),
    "double quotes": ("printf '[%s]\\n' \"<$<< inputs.p >>>\"", "[<{v}>]\n"),
    "single quotes": ("printf '[%s]\\n' '<$<< inputs.p >>>'", "[<{v}>]\n"),
    "ansi-c quotes": ("printf '[%s]\\n' $'<\\'$<< inputs.p >>\\'>'", "[<'{v}'>]\n"),
    "glued to a word": ("printf '[%s]\\n' x$<< inputs.p >>'y'\"z\"", "[x{v}yz]\n"),
    "parameter default": ("printf '[%s]\\n' \"${NOPE:-$<< inputs.p >>}\"", "[{v}]\n"),
    "command substitution": ("printf '[%s]\\n' \"$(printf '%s' $<< inputs.p >>)\"", "[{v}]\n"),
    "backticks": ("printf '[%s]\\n' \"`printf '%s' $<< inputs.p >>`\"", "[{v}]\n"),
    "heredoc": ("cat <<EOF\n[$<< inputs.p >>]\nEOF", "[{v}]\n"),
    "heredoc, tabs stripped": (
        "cat <<-END\n\t[$<< inputs.p >>]\n\tEND\nprintf '(%s)\\n' $<< inputs.p >>",
        "[{v}]\n({v})\n",
    ),
    "after a comment": ("# it's $<< inputs.p >>\nprintf '[%s]\\n' $<< inputs.p >>", "[{v}]\n"),
    "variable assignment": ("x=$<< inputs.p >>; printf '[%s]\\n' \"$x\"", "[{v}]\n"),
}


def run_bash(text: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", text],
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_hostile_values_are_data_in_every_quote_state(state: str, payload: str, tmp_path: Path) -> None:
    template, expected = STATES[state]
    text, env = render_for_shell(template, {"inputs": {"p": payload}})
    assert not payload or payload not in text  # the value is not part of the shell text
    result = run_bash(text, env, tmp_path)
    assert result.returncode == 0, result.stderr
    # Heredoc bodies end in a newline; command substitution drops trailing ones (bash semantics).
    value = payload.rstrip("\n") if state in ("command substitution", "backticks") else payload
    assert result.stdout == expected.format(v=value)
    assert list(tmp_path.iterdir()) == []  # nothing was created: no touch, no redirection


def test_environment_names_values_and_prefix() -> None:
    text, env = render_for_shell(
        "echo $<< inputs.a >> $<< inputs.b >> $<< inputs.c >> $<< inputs.d >> $<< inputs.e >>",
        {"inputs": {"a": 2, "b": True, "c": None, "d": {"k": [1, "x"]}, "e": 1.5}},
        prefix="V_",
    )
    assert text == 'echo "${V_0}" "${V_1}" "${V_2}" "${V_3}" "${V_4}"'
    assert env == {"V_0": "2", "V_1": "true", "V_2": "", "V_3": '{"k":[1,"x"]}', "V_4": "1.5"}


def test_text_without_expressions_is_unchanged() -> None:
    assert render_for_shell("echo 'a' \"$HOME\" >> x", {}) == ("echo 'a' \"$HOME\" >> x", {})


def test_closing_delimiter_inside_a_string_literal() -> None:
    text, env = render_for_shell("echo $<< format('{0}>>', inputs.p) >>!", {"inputs": {"p": "v"}})
    assert text == 'echo "${WATERFLOW_EXPR_0}"!'
    assert env == {"WATERFLOW_EXPR_0": "v>>"}


def test_secret_values_only_travel_in_the_environment(tmp_path: Path) -> None:
    text, env = render_for_shell("curl -H 'Authorization: $<< secrets.TOKEN >>' x", {"secrets": {"TOKEN": "s3cr3t"}})
    assert "s3cr3t" not in text and list(env.values()) == ["s3cr3t"]


@pytest.mark.parametrize(
    "template",
    [
        "echo $(( $<< inputs.n >> + 1 ))",
        "(( n = $<< inputs.n >> ))",
        "for ((i = 0; i < $<< inputs.n >>; i++)); do :; done",
        "echo $[ $<< inputs.n >> ]",
        "echo ${arr[$<< inputs.n >>]}",
        "cat <<'EOF'\n$<< inputs.n >>\nEOF",
        'cat <<"EOF"\n$<< inputs.n >>\nEOF',
        "cat <<$<< inputs.n >>\nx\n",
        "echo \\$<< inputs.n >>",
        'echo "\\$<< inputs.n >>"',
    ],
)
def test_places_where_no_quoting_is_safe_are_refused(template: str) -> None:
    with pytest.raises(ShellQuotingError) as info:
        render_for_shell(template, {"inputs": {"n": "a[$(touch pwned)]"}})
    assert info.value.position == template.index("$<<") + 1
    assert isinstance(info.value, ExpressionError)


def test_arithmetic_refusal_is_real(tmp_path: Path) -> None:
    """Why arithmetic is refused: bash runs command substitutions hidden in arithmetic values."""
    result = run_bash('n="a[$(touch pwned)]"; echo $(( n + 1 ))', {}, tmp_path)
    assert (tmp_path / "pwned").exists(), result.stderr


def test_to_shell_string_follows_github() -> None:
    assert [to_shell_string(v) for v in (None, False, 3, 3.0, 0.1, 1e21, float("nan"), "s")] == [
        "", "false", "3", "3", "0.1", "1E+21", "NaN", "s",
    ]
    assert to_shell_string([1, {"a": None}]) == '[1,{"a":null}]'
