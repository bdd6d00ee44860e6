"""Bash arithmetic and name contexts in render_for_shell, attacked in real bash.

Each guarded construct has three tests: the attack is real (the same construct runs the payload
when the value is not checked), render_for_shell stops it before anything runs, and legitimate
values still work. Constructs left alone are run with the payload to show bash does not evaluate
it there. The table in docs/adr/0019-shell-arithmetic.md lists the same cases.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.shellsafe import ShellQuotingError, ShellValueError, check_shell_template, render_for_shell

ARITH_PAYLOAD = "a[$(touch MARK)]"
CODE_PAYLOAD = "$(touch MARK)"
V = "$<< inputs.v >>"

# Integer required. name: (template, its stdout when the value is 7).
INTEGER: dict[str, tuple[str, str]] = {
    "[[ -gt ]]": (f"[[ {V} -gt 5 ]] && echo yes", "yes\n"),
    "[[ -eq ]], double-quoted": (f'[[ 7 -eq "{V}" ]] && echo yes', "yes\n"),
    "[[ -ne ]], single-quoted": (f"[[ '{V}' -ne 1 ]] && echo yes", "yes\n"),
    "[[ -lt -le -ge ]] with ! && ( )": (f"[[ 1 -lt {V} && ( ! {V} -ge 8 ) ]] && echo yes", "yes\n"),
    "[[ -gt ]] inside $( )": (f'echo "$( [[ {V} -gt 5 ]] && echo yes )"', "yes\n"),
    "(( ))": (f"(( {V} > 5 )) && echo yes", "yes\n"),
    "$(( ))": (f"echo $(( {V} + 1 ))", "8\n"),
    "$(( )) with a double-quoted operand": (f'echo "$(( "{V}" * 2 ))"', "14\n"),
    "for (( ))": (f"for ((i = 0; i < {V}; i++)); do :; done; echo $i", "7\n"),
    "$[ ]": (f"echo $[ {V} - 1 ]", "6\n"),
    "heredoc body $(( ))": (f"cat <<EOF\n$(( {V} + 1 ))\nEOF", "8\n"),
    "${a[i]}": (f'a=(0 1 2 3 4 5 6 7); echo "${{a[{V}]}}"', "7\n"),
    "${#a[i]}": (f'a=([7]=abc); echo "${{#a[{V}]}}"', "3\n"),
    "${s:offset}": (f'a=abcdefghij; echo "${{a:{V}}}"', "hij\n"),
    "${s:0:length}": (f'a=abcdefghij; echo "${{a:0:{V}}}"', "abcdefg\n"),
    "${@:offset}": (f'set -- 1 2 3 4 5 6 7 8; echo "${{@:{V}}}"', "7 8\n"),
    "a[i]=": (f'a[{V}]=x; echo "${{!a[@]}}"', "7\n"),
    "a[ i ]= with blanks": (f'a[ {V} ]=x; echo "${{!a[@]}}"', "7\n"),
    "a=([i]=x)": (f'a=([{V}]=x); echo "${{!a[@]}}"', "7\n"),
    "a+=([i]=x)": (f'a=(); a+=([{V}]=x); echo "${{!a[@]}}"', "7\n"),
    "let": (f'let "a = {V} * 2"; echo $a', "14\n"),
    "declare -i": (f"declare -i a={V}; echo $a", "7\n"),
    "typeset -i": (f"typeset -i a={V}; echo $a", "7\n"),
    "local -i": (f'f() {{ local -i a="{V}"; echo $a; }}; f', "7\n"),
    "declare -i, assigned later": (f"declare -i a; a={V}; echo $a", "7\n"),
    "declare -ai elements": (f"declare -ai a=({V}); echo ${{a[0]}}", "7\n"),
    "declare a[i]=": (f'declare "a[{V}]=x"; echo "${{!a[@]}}"', "7\n"),
    "printf -v a[i]": (f'printf -v "a[{V}]" %s x; echo "${{!a[@]}}"', "7\n"),
    "read a[i]": (f'read "a[{V}]" <<< x; echo "${{!a[@]}}"', "7\n"),
    "unset a[i]": (f'a=([7]=x [8]=y); unset "a[{V}]"; echo "${{!a[@]}}"', "8\n"),
    "[ -v a[i] ]": (f'a=([7]=x); [ -v "a[{V}]" ] && echo yes', "yes\n"),
    "RANDOM=": (f"RANDOM={V}; echo ok", "ok\n"),
    "OPTIND=": (f"OPTIND={V}; echo $OPTIND", "7\n"),
}
# Associative arrays: the key is expanded a second time by these builtins.
ASSOC_INTEGER: dict[str, tuple[str, str]] = {
    "printf -v A[k]": (f'declare -A A; printf -v "A[{V}]" %s x; echo "${{!A[@]}}"', "7\n"),
    "read A[k]": (f'declare -A A; read "A[{V}]" <<< x; echo "${{!A[@]}}"', "7\n"),
    "unset A[k]": (f'declare -A A=([7]=x [8]=y); unset "A[{V}]"; echo "${{!A[@]}}"', "8\n"),
    "declare A[k]=": (f'declare -A A; declare "A[{V}]=x"; echo "${{!A[@]}}"', "7\n"),
}

# Refused whatever the value. name: (template, the same construct with the value in $V, payload).
REFUSED: dict[str, tuple[str, str, str]] = {
    "printf -v NAME": (f"printf -v {V} %s x", 'printf -v "$V" %s x', ARITH_PAYLOAD),
    "printf -vNAME": (f"printf -v{V} %s x", 'printf -v"$V" %s x', ARITH_PAYLOAD),
    "read NAME": (f"read {V} <<< x", 'read "$V" <<< x', ARITH_PAYLOAD),
    "unset NAME": (f'a=(1); unset "{V}"', 'a=(1); unset "$V"', ARITH_PAYLOAD),
    "unset -v NAME": (f"a=(1); unset -v {V}", 'a=(1); unset -v "$V"', ARITH_PAYLOAD),
    "[ -v NAME ]": (f'[ -v "{V}" ]', '[ -v "$V" ]', ARITH_PAYLOAD),
    "test -v NAME": (f"test -v {V}", 'test -v "$V"', ARITH_PAYLOAD),
    "[[ -v NAME ]]": (f"[[ -v {V} ]]", '[[ -v "$V" ]]', ARITH_PAYLOAD),
    "wait -p NAME": (f"sleep 0 & wait -p {V} -n", 'sleep 0 & wait -p "$V" -n', ARITH_PAYLOAD),
    "${!NAME} indirection": (f'echo "${{!{V}}}"', 'echo "${!V}"', ARITH_PAYLOAD),
    "declare NAME=": (f'declare "{V}=1"', 'declare "$V=1"', ARITH_PAYLOAD),
    "local NAME=": (f'f() {{ local "{V}=1"; }}; f', 'f() { local "$V=1"; }; f', ARITH_PAYLOAD),
    "declare -n target": (f'declare -n r={V}; echo "$r"', 'declare -n r="$V"; echo "$r"', ARITH_PAYLOAD),
    "declare -a quoted compound": (f'declare -a "a=({V})"', 'declare -a "a=($V)"', ARITH_PAYLOAD),
    "eval": (f'eval "echo {V}"', 'eval "echo $V"', CODE_PAYLOAD),
    "trap action": (f'trap "{V}" EXIT', 'trap "$V" EXIT', "touch MARK"),
    "mapfile -C": (f"mapfile -C {V} -c 1 a <<< x", 'mapfile -C "$V" -c 1 a <<< x', "touch MARK"),
    "bash -c": (f'bash -c "echo {V}"', 'bash -c "echo $V"', CODE_PAYLOAD),
    "/bin/sh -ec": (f"/bin/sh -ec '{V}'", '/bin/sh -ec "$V"', "touch MARK"),
    "PS4": (f"PS4={V}; set -x; :", 'PS4="$V"; set -x; :', CODE_PAYLOAD),
}
# Refused though bash 5.2 does not evaluate them today: declaration builtins and name arguments
# are treated alike, so the rule stays one rule.
CONSERVATIVE = [
    f"export {V}=1",
    f"readonly {V}",
    f"declare {V}",
    f"read -a {V} <<< x",
    f"mapfile {V} <<< x",
    f"declare -{V} a=1",
]

# Bash does not evaluate values here (checked with the payload): left alone, value passed as data.
NOT_EVALUATED = [
    f'[ "{V}" -gt 5 ]',
    f"test {V} -eq 5",
    f"/usr/bin/test {V} -eq 5",
    f"shift {V}",
    f"exit {V}",
    f"f() {{ return {V}; }}; f",
    f"for i in 1; do break {V}; done",
    f"ulimit -n {V}",
    f"kill {V}",
    f"kill -s {V} $$",
    f"history -d {V}",
    f"mapfile -O {V} a <<< x",
    f"read -n {V} a <<< x",
    f"read -t {V} a <<< x",
    f"wait {V}",
    f"printf %d {V}",
    f"set -- {V}",
    f"getopts a {V} -a",
    f"caller {V}",
    f"umask {V}",
    f'declare a="{V}"',
    f'declare -A A; echo "${{A[x]:-{V}}}"',
    f'[[ {V} == x ]]',
    f"case {V} in x) ;; esac",
    f'sh -c \'echo "$1"\' _ {V}',
    f"echo $(( 1 + 1 )) {V} > /dev/null",
]


def run_bash(text: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", text],
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def render_and_run(template: str, value: Any, cwd: Path) -> subprocess.CompletedProcess[str] | ShellQuotingError:
    """What the agent does: render, and run only what rendered (a refusal fails the step)."""
    try:
        text, env = render_for_shell(template, {"inputs": {"v": value}})
    except ShellQuotingError as err:
        return err
    return run_bash(text, env, cwd)


def bypassing_the_check(template: str, value: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The rendered text of a legitimate value, run with ``value`` instead: no integer check."""
    text, env = render_for_shell(template, {"inputs": {"v": "7"}})
    return run_bash(text, {name: value for name in env}, cwd)


ALL_INTEGER = {**INTEGER, **ASSOC_INTEGER}


@pytest.mark.parametrize("case", list(ALL_INTEGER))
def test_integer_context_attack_is_real(case: str, tmp_path: Path) -> None:
    payload = CODE_PAYLOAD if case in ASSOC_INTEGER else ARITH_PAYLOAD
    result = bypassing_the_check(ALL_INTEGER[case][0], payload, tmp_path)
    assert (tmp_path / "MARK").exists(), (result.stdout, result.stderr)


@pytest.mark.parametrize("case", list(ALL_INTEGER))
def test_integer_context_refuses_the_payload(case: str, tmp_path: Path) -> None:
    template = ALL_INTEGER[case][0]
    for payload in (ARITH_PAYLOAD, CODE_PAYLOAD, "7 ", "0x7", "seven", "B", "1e3", "-", ""):
        outcome = render_and_run(template, payload, tmp_path)
        assert isinstance(outcome, ShellValueError), (payload, outcome)
        assert outcome.position == template.index(V) + 1
        assert payload not in outcome.message or len(payload) < 3  # a value may be a secret
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", list(ALL_INTEGER))
def test_integer_context_works_with_integers(case: str, tmp_path: Path) -> None:
    template, expected = ALL_INTEGER[case]
    check_shell_template(template)  # nothing to refuse before the value is known
    result = render_and_run(template, "7", tmp_path)
    assert not isinstance(result, ShellQuotingError)
    assert (result.returncode, result.stdout) == (0, expected), result.stderr


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_context_attack_is_real(case: str, tmp_path: Path) -> None:
    _, construct, payload = REFUSED[case]
    result = run_bash(construct, {"V": payload}, tmp_path)
    assert (tmp_path / "MARK").exists(), (result.stdout, result.stderr)


@pytest.mark.parametrize("case", [*REFUSED, *CONSERVATIVE])
def test_refused_context_is_refused_before_values(case: str, tmp_path: Path) -> None:
    template = REFUSED[case][0] if case in REFUSED else case
    with pytest.raises(ShellQuotingError) as at_validate:
        check_shell_template(template)
    outcome = render_and_run(template, "7", tmp_path)  # even a harmless value: the place is wrong
    assert isinstance(outcome, ShellQuotingError) and not isinstance(outcome, ShellValueError)
    assert outcome.position == at_validate.value.position == template.index(V) + 1
    assert outcome.message.startswith(f"{V} cannot be used ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("template", NOT_EVALUATED)
@pytest.mark.parametrize("payload", [ARITH_PAYLOAD, CODE_PAYLOAD])
def test_contexts_bash_does_not_evaluate_pass_values_as_data(template: str, payload: str, tmp_path: Path) -> None:
    outcome = render_and_run(template, payload, tmp_path)
    assert not isinstance(outcome, ShellQuotingError), outcome
    assert not (tmp_path / "MARK").exists(), (outcome.stdout, outcome.stderr)


def test_a_name_is_not_an_integer(tmp_path: Path) -> None:
    """Arithmetic dereferences names: `B` would evaluate the variable B, payload and all."""
    template = f"[[ {V} -gt 5 ]]"
    text, _ = render_for_shell(template, {"inputs": {"v": 7}})
    run_bash(text, {"WATERFLOW_EXPR_0": "B", "B": ARITH_PAYLOAD}, tmp_path)
    assert (tmp_path / "MARK").exists()
    with pytest.raises(ShellValueError):
        render_for_shell(template, {"inputs": {"v": "B"}})


def test_integer_values_of_every_kind(tmp_path: Path) -> None:
    template = f"echo $(( {V} + 0 ))"
    for value, expected in ((7, "7"), (-3, "-3"), (7.0, "7"), ("0012", "10"), ("-0", "0")):
        result = render_and_run(template, value, tmp_path)
        assert not isinstance(result, ShellQuotingError)
        assert result.stdout == expected + "\n", (value, result.stderr)
    for value in (True, None, 1.5, [1], {"a": 1}, "٣", "1\n"):
        assert isinstance(render_and_run(template, value, tmp_path), ShellValueError), value


def test_error_names_the_expression_and_its_line() -> None:
    template = "echo start\nlet 'n = $<< inputs.count >> + 1'\n"
    with pytest.raises(ShellValueError) as info:
        render_for_shell(template, {"inputs": {"count": "a[$(id)]"}})
    assert info.value.message.startswith("$<< inputs.count >> (line 2) must be an integer here, in an argument of let")
    assert "a[$(id)]" not in str(info.value)
    assert isinstance(info.value, ExpressionError)


@pytest.mark.parametrize(
    "template",
    [
        # The value is an argument, a word, a default: quoting is enough.
        f"echo {V} a[{V}]",
        f'a=(1 {V} "{V}")',
        f"f() {{ echo {V}; }}",
        f"x={V} printf '%s' \"$x\"",
        f"echo ${{x:-[{V}]}}",
        f"echo {V} > /dev/null 2>&1",
        f"cat <<< {V}",
        f"[[ {V} =~ ^(a|b)$ ]] || true",
        f"# let {V}\necho ok",
        f"if true; then echo {V}; fi",
        f"declare -- a={V}",
        f'echo $(( $(cat "{V}" 2>/dev/null || echo 0) + 1 ))',  # an argument of cat, not arithmetic
    ],
)
def test_ordinary_places_take_any_value(template: str, tmp_path: Path) -> None:
    outcome = render_and_run(template, ARITH_PAYLOAD, tmp_path)
    assert not isinstance(outcome, ShellQuotingError), outcome
    assert not (tmp_path / "MARK").exists()


@pytest.mark.parametrize(
    "template",
    [
        f"if true; then let {V}; fi",
        f"true && let {V}",
        f"{{ let {V}; }}",
        f"function f {{ let {V}; }}",
        f"x=1 let {V}",
        f"command let {V}",
        f"echo $(let {V})",
        f"echo `let {V}`",
        f"cat <(let {V})",
        f"let \\\n  {V}",
        f"echo 2>/dev/null; let {V}",
        f"case x in x) let {V};; esac",
        f"echo $(case x in (x) echo;; esac; let {V})",
    ],
)
def test_commands_are_found_after_keywords_and_operators(template: str) -> None:
    with pytest.raises(ShellValueError):
        render_for_shell(template, {"inputs": {"v": ARITH_PAYLOAD}})


def test_case_patterns_inside_command_substitution(tmp_path: Path) -> None:
    """A pattern's `)` does not end `$(`: the quoting inside stays the substitution's own."""
    template = f"""printf '[%s]\\n' "$(case a in a) echo '{V}';; esac)" "$(case a in (a) echo {V};; esac)" """
    outcome = render_and_run(template, "it's $HOME", tmp_path)
    assert not isinstance(outcome, ShellQuotingError)
    assert outcome.stdout == "[it's $HOME]\n[it's $HOME]\n", outcome.stderr


# What ADR 0019 lists as undetectable: rendered without complaint, and the payload does run.
UNDETECTABLE = {
    "a variable used in arithmetic later": (f"n={V}; echo $(( n + 1 ))", ARITH_PAYLOAD),
    "a variable used in [[ -gt ]] later": (f'n="{V}"; [[ $n -gt 1 ]]', ARITH_PAYLOAD),
    "a command's output in arithmetic": (f"echo $(( $(echo {V}) + 1 ))", ARITH_PAYLOAD),
    "a shell behind a wrapper": (f'env bash -c "echo {V}"', CODE_PAYLOAD),
}


@pytest.mark.parametrize("case", list(UNDETECTABLE))
def test_documented_limits_are_real(case: str, tmp_path: Path) -> None:
    template, payload = UNDETECTABLE[case]
    outcome = render_and_run(template, payload, tmp_path)
    assert not isinstance(outcome, ShellQuotingError), outcome
    assert (tmp_path / "MARK").exists()
