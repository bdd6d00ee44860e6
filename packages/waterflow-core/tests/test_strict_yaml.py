"""The strict YAML loader: unit tests, a differential corpus test against strictyaml, and a fuzz test.

Corpus: ``yaml_corpus/valid/*.yaml`` must load to exactly what strictyaml's
``dirty_load(text, allow_flow_style=True)`` returns; ``yaml_corpus/invalid/*.yaml`` must be
rejected by both, at the lines and columns in ``INVALID`` below. Where we deliberately differ from
strictyaml, the case says why (and docs/adr/0007-strict-yaml-fast-path.md lists them all).
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
import strictyaml
from strictyaml.ruamel.error import YAMLError

from waterflow_core.dsl import strict_yaml as sy
from waterflow_core.dsl.strict_yaml import MAX_DEPTH, MAX_DOCUMENT_BYTES, Position, YamlDocument, load_strict_yaml
from waterflow_core.errors import WorkflowValidationError

CORPUS = Path(__file__).parent / "yaml_corpus"
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
INVALID_FILES = sorted((CORPUS / "invalid").glob("*.yaml"))
# strictyaml rejects every invalid file we reject without a deviation: with its YAMLError, except
# where it crashes on the input instead (its own bugs), with these errors.
STRICTYAML_CRASHES: dict[str, tuple[type[Exception], str | None]] = {
    "complex_key_block.yaml": (AssertionError, "<class 'tuple'>"),
    "control_character.yaml": (AttributeError, "'ReaderError' object has no attribute 'context_mark'"),
}

# Valid documents whose data differs from strictyaml's on purpose: file -> (our data, why).
VALID_DEVIATIONS: dict[str, tuple[Any, str]] = {
    "top_level_scalar.yaml": (
        "just text",
        "strictyaml returns the raw document text ('just text  # c\\n') for a top-level scalar; "
        "we return the scalar's value, as for any other scalar",
    ),
    "comment_only.yaml": (
        "",
        "strictyaml returns the raw text of a comment-only document; we return '' as for an empty one",
    ),
}

# Invalid documents: file -> (expected (line, column, message fragment) items, load kwargs,
# None if strictyaml rejects it too, else why we are stricter or why strictyaml cannot judge it).
INVALID: dict[str, tuple[list[tuple[int, int, str]], dict[str, Any], str | None]] = {
    "alias.yaml": ([(1, 7, "anchors and aliases"), (3, 13, "anchors and aliases")], {}, None),
    "alias_as_key.yaml": ([(1, 4, "anchors and aliases"), (2, 1, "anchors and aliases")], {}, None),
    "anchor.yaml": ([(1, 11, "anchors and aliases are not allowed")], {}, None),
    "bad_indentation.yaml": ([(4, 4, "did not find expected key")], {}, None),
    "bad_list_indentation.yaml": ([(4, 4, "did not find expected '-' indicator")], {}, None),
    "complex_key_block.yaml": ([(1, 3, "a key must be plain text, not a list")], {}, None),
    "complex_key_flow.yaml": ([(1, 10, "a key must be plain text, not a mapping")], {}, None),
    "control_character.yaml": ([(1, 11, "U+0007 is not allowed")], {}, None),
    "dash_value.yaml": ([(1, 7, "block sequence entries are not allowed")], {}, None),
    "duplicate_key.yaml": ([(5, 5, "duplicate key 'steps' (first defined at line 4, column 5)")], {}, None),
    "duplicate_key_flow.yaml": ([(1, 21, "duplicate key 'command' (first defined at line 1, column 8)")], {}, None),
    "duplicate_key_in_list.yaml": ([(6, 5, "duplicate key 'id' (first defined at line 4, column 5)")], {}, None),
    "mapping_value_in_plain.yaml": ([(1, 16, "mapping values are not allowed")], {}, None),
    "merge_key.yaml": (
        [(3, 3, "merge keys ('<<') are not allowed")],
        {},
        "strictyaml silently drops a '<<: {...}' entry (its parser applies the merge); a plain '<<' "
        "key either merges or is a string depending on the parser, so we reject it (quote it for a "
        "literal '<<' key)",
    ),
    "multiple_documents.yaml": ([(2, 1, "only one YAML document is allowed")], {}, None),
    "non_utf8.yaml": ([(2, 17, "not valid UTF-8 (byte 0xe9)")], {}, "strictyaml only takes str"),
    "reserved_character.yaml": ([(1, 7, "found character '@' that cannot start any token")], {}, None),
    "several_problems.yaml": (
        [
            (2, 1, "duplicate key 'name' (first defined at line 1, column 1)"),
            (3, 6, "anchors and aliases are not allowed"),
            (5, 1, "duplicate key 'jobs' (first defined at line 4, column 1)"),
        ],
        {},
        None,
    ),
    "tab_flow_continuation.yaml": ([(2, 1, "tab characters cannot be used for indentation")], {}, None),
    "tab_indent.yaml": ([(2, 1, "tab characters cannot be used for indentation")], {}, None),
    "tab_indent_nested.yaml": ([(3, 3, "tab characters cannot be used for indentation")], {}, None),
    "tag_core.yaml": ([(1, 11, "tags such as '!!int' are not allowed")], {}, None),
    "tag_local.yaml": ([(3, 14, "tags such as '!server' are not allowed")], {}, None),
    "tag_on_collection.yaml": ([(1, 6, "tags such as '!!map' are not allowed")], {}, None),
    "too_big.yaml": (
        [(1, 1, "document is larger than the 100-byte limit")], {"max_bytes": 100}, "strictyaml has no size cap"
    ),
    "too_deep.yaml": ([(1, 67, "nesting deeper than 64 levels")], {}, "strictyaml has no depth cap"),
    "unclosed_flow.yaml": ([(2, 8, "did not find expected ',' or ']'")], {}, None),
    "unknown_escape.yaml": ([(1, 10, "found unknown escape character")], {}, None),
    "unterminated_double_quote.yaml": ([(2, 1, "a quote is not closed")], {}, None),
    "unterminated_single_quote.yaml": ([(3, 1, "(started at line 1, column 7); a quote is not closed")], {}, None),
    "utf16.yaml": ([(1, 1, "not valid UTF-8 (byte 0xff)")], {}, "strictyaml only takes str"),
}


def _errors(text: str | bytes, **kwargs: Any) -> list[tuple[int, int, str, str]]:
    with pytest.raises(WorkflowValidationError) as info:
        load_strict_yaml(text, **kwargs)
    return [(e.line, e.column, e.path, e.message) for e in info.value.errors]


# --- differential corpus ---------------------------------------------------------------------


def test_corpus_is_big_enough() -> None:
    assert len(VALID) >= 25
    assert len(INVALID_FILES) >= 15
    assert {f.name for f in INVALID_FILES} == set(INVALID), "every invalid corpus file needs expectations"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_corpus_matches_strictyaml(path: Path) -> None:
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    doc = load_strict_yaml(text)
    assert load_strict_yaml(raw).data == doc.data  # str and bytes input agree
    if path.name in VALID_DEVIATIONS:
        assert doc.data == VALID_DEVIATIONS[path.name][0]
        return
    assert doc.data == strictyaml.dirty_load(text, allow_flow_style=True).data


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.name)
def test_invalid_corpus_rejected_where_expected(path: Path) -> None:
    expected, kwargs, deviation = INVALID[path.name]
    raw = path.read_bytes()
    found = _errors(raw, **kwargs)
    assert [(line, col) for line, col, _, _ in found] == [(line, col) for line, col, _ in expected]
    for (_, _, _, message), (_, _, fragment) in zip(found, expected, strict=True):
        assert fragment in message
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        assert deviation, "only non-UTF-8 input cannot be given to strictyaml"
        return
    assert _errors(text, **kwargs) == found  # str and bytes input agree
    if deviation is None:
        error, message = STRICTYAML_CRASHES.get(path.name, (YAMLError, None))
        with pytest.raises(error, match=re.escape(message) if message else None):
            strictyaml.dirty_load(text, allow_flow_style=True)


# --- semantics ---------------------------------------------------------------------------------


def test_every_scalar_is_a_string() -> None:
    text = "a: on\nb: no\nc: 1.10\nd: null\ne: ~\nf: 0x10\ng: [1, true, 2001-12-14]\nh: ''\n"
    assert load_strict_yaml(text).data == {
        "a": "on", "b": "no", "c": "1.10", "d": "null", "e": "~", "f": "0x10",
        "g": ["1", "true", "2001-12-14"], "h": "",
    }  # fmt: skip


def test_empty_values_and_documents_match_strictyaml() -> None:
    for text in ["", "a:\n", "- \n- b\n", "{a: }", "? a\n", "---\na: 1\n...\n", "[a, b]", "{a: [b]}"]:
        assert load_strict_yaml(text).data == strictyaml.dirty_load(text, allow_flow_style=True).data, text
    assert load_strict_yaml("   \n# only a comment\n").data == ""  # strictyaml: the raw text
    assert load_strict_yaml("'quoted top-level'").data == "quoted top-level"  # strictyaml: with quotes


def test_quoted_merge_key_is_a_plain_string() -> None:
    assert load_strict_yaml("'<<': x\n").data == {"<<": "x"}


def test_tabs_inside_scalars_and_as_separators_are_fine() -> None:
    # strictyaml rejects tabs anywhere outside quoted/block scalars; YAML allows them between
    # tokens, and only indentation is ambiguous, so that is all we reject (a deliberate deviation).
    assert load_strict_yaml("a: |\n  x\n  \ty\nb: 'p\tq'\nc:\td\n").data == {"a": "x\n\ty\n", "b": "p\tq", "c": "d"}
    assert load_strict_yaml("a: \"x\n\ty\"\n").data == {"a": "x y"}  # continuation of a quoted scalar


def test_tab_errors_say_what_is_wrong() -> None:
    assert _errors("a:\n\tb: 1\n") == [(2, 1, "", "tab characters cannot be used for indentation")]
    assert _errors("- \ta\n") == [(1, 3, "", "a tab cannot be used here; use spaces")]


# --- positions ---------------------------------------------------------------------------------

POSITIONS_DOC = """\
name: demo
jobs:
  build:
    steps:
      - id: one
        with: {cmd: 'ls', list: [a, "b"]}
      - run: |
          echo hi
"""


@pytest.mark.parametrize("eager", [False, True], ids=["lazy", "eager"])
def test_positions(eager: bool) -> None:
    doc = load_strict_yaml(POSITIONS_DOC)
    if eager:  # the careful builder's records must agree with the lazily computed ones
        records: dict[Any, Any] = {}
        sy._build_careful(POSITIONS_DOC.encode(), POSITIONS_DOC, records, sy._Problems(POSITIONS_DOC), MAX_DEPTH)
        doc = YamlDocument(doc.data, records)
    assert doc.value_position(()) == Position(1, 1)
    assert doc.key_position(("name",)) == Position(1, 1)
    assert doc.value_position(("name",)) == Position(1, 7)
    assert doc.key_position(("jobs", "build")) == Position(3, 3)
    assert doc.value_position(("jobs", "build")) == Position(4, 5)
    assert doc.key_position(("jobs", "build", "steps", 0)) == Position(5, 9)
    assert doc.key_position(("jobs", "build", "steps", 0, "with", "cmd")) == Position(6, 16)
    assert doc.value_position(("jobs", "build", "steps", 0, "with", "cmd")) == Position(6, 21)
    assert doc.value_position(("jobs", "build", "steps", 0, "with", "list", 1)) == Position(6, 37)
    assert doc.value_position(("jobs", "build", "steps", 1, "run")) == Position(7, 14)
    assert doc.scalar_style(("jobs", "build", "steps", 0, "with", "cmd")) == "'"
    assert doc.scalar_style(("jobs", "build", "steps", 0, "with", "list", 1)) == '"'
    assert doc.scalar_style(("jobs", "build", "steps", 1, "run")) == "|"
    assert doc.scalar_style(("name",)) is None
    assert doc.scalar_style(("jobs",)) is None
    assert doc.scalar_style(("missing",)) is None
    # missing paths fall back to the deepest existing ancestor
    assert doc.value_position(("jobs", "build", "runs-on")) == Position(4, 5)
    assert doc.key_position(("jobs", "build", "runs-on")) == Position(3, 3)
    assert doc.value_position(("jobs", "nope", "x", 3)) == Position(3, 3)
    assert doc.value_position(("jobs", "build", "steps", 9)) == Position(5, 7)  # the list starts at its first "-"
    assert doc.key_position(("nope",)) == Position(1, 1)


def test_positions_of_empty_and_scalar_documents() -> None:
    assert load_strict_yaml("").value_position(()) == Position(1, 1)
    assert load_strict_yaml("\n\n  'x'\n").value_position(()) == Position(3, 3)


def test_positions_skip_a_bom() -> None:
    doc = load_strict_yaml(b"\xef\xbb\xbfa: 1\n")
    assert doc.data == {"a": "1"}
    assert doc.value_position(("a",)) == Position(1, 4)


# --- limits and encodings -----------------------------------------------------------------------


def test_size_cap_counts_utf8_bytes() -> None:
    assert MAX_DOCUMENT_BYTES == 1 << 20
    text = "a: " + "é" * 10  # 23 bytes, 13 characters
    assert load_strict_yaml(text, max_bytes=23).data == {"a": "é" * 10}
    assert _errors(text, max_bytes=22) == [(1, 1, "", "document is larger than the 22-byte limit")]
    assert _errors(text.encode(), max_bytes=22) == [(1, 1, "", "document is larger than the 22-byte limit")]
    assert _errors("x" * (MAX_DOCUMENT_BYTES + 1))[0][3] == "document is larger than the 1048576-byte limit"


def test_depth_cap_is_exact_and_configurable() -> None:
    assert MAX_DEPTH == 64
    assert load_strict_yaml("[" * 64 + "]" * 64).data is not None
    assert _errors("[" * 65 + "]" * 65) == [(1, 65, "[0][0][0][0]…[0][0][0]", "nesting deeper than 64 levels")]
    block = "".join("  " * i + f"k{i}:\n" for i in range(3)) + "      leaf: x\n"
    assert load_strict_yaml(block, max_depth=4).data == {"k0": {"k1": {"k2": {"leaf": "x"}}}}
    assert _errors(block, max_depth=3)[0][:2] == (4, 7)


def test_hostile_documents_stop_early() -> None:
    pairs = zip("abcdefgh", "bcdefghi", strict=True)
    laughs = "a: &a [x, x]\n" + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}]\n" for p, c in pairs)
    errors = _errors(laughs)  # aliases are never expanded, so this is a short list of problems
    assert all(message == "anchors and aliases are not allowed" for _, _, _, message in errors)
    assert len(_errors("[" * 500_000 + "]" * 500_000)) == 1  # deep nesting stops at level 65
    many = "".join("a: 1\n" for _ in range(10_000))
    errors = _errors(many)
    assert len(errors) == sy.MAX_ERRORS + 1
    assert (sy.MAX_ERRORS + 1, 1, "", f"stopped after {sy.MAX_ERRORS} problems") in errors


def test_error_paths_are_short_and_quote_odd_keys() -> None:
    # Paths come from errors.format_path, as the loader's do: odd keys quoted, long keys and
    # deep paths cut (was: the whole path, unquoted; 600+ characters for a too-deep document).
    assert _errors('"a.b": {x: 1, x: 2}\n')[0][2] == '["a.b"].x'
    assert _errors("env: {A B: &x 1}\n")[0][2] == 'env["A B"]'
    long_key = "k" * 500
    [(_, _, path, _)] = _errors(f"{long_key}: {{y: 1, y: 1}}\n")
    assert path == '["' + "k" * 57 + '..."].y'
    deep = "".join("  " * i + f"{long_key}{i}:\n" for i in range(70))
    [(line, column, path, message)] = _errors(deep)
    assert (line, column, message) == (65, 129, "nesting deeper than 64 levels")
    assert len(path) < 500 and "…" in path, path


# libyaml breaks lines on CR LF (one break), CR, LF, NEL, LS and PS.
LINE_BREAKS = ["\n", "\r\n", "\r", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=["LF", "CRLF", "CR", "NEL", "LS", "PS"])
def test_every_place_counts_line_breaks_as_libyaml_does(brk: str) -> None:
    # Reader errors (a byte offset converted by us) and syntax errors (libyaml's own marks) agree.
    nul = "the character U+0000 is not allowed in YAML; write it as an escape in double quotes"
    assert _errors(f'a: "x{brk}y"{brk}b: c: d{brk}')[0][:2] == (3, 5)
    assert _errors(f'a: "x{brk}y"{brk}b: \x00{brk}') == [(3, 4, "", nul)]
    assert _errors(f"\ufeffa: b{brk}c: \x00") == [(2, 4, "", nul)]
    assert _errors(f"a: b{brk}c: ok\xff".encode() + b"\xff")[0][:2] == (2, 7)
    assert _errors(f"a: b{brk}c: x\ud800")[0][:2] == (2, 5)
    # Anchors and tags are found on their own line, at their own column.
    assert _errors(f"a: b{brk}c: &x d{brk}")[0][:2] == (2, 4)
    assert _errors(f"a: b{brk}c: 1 {brk}d: !t e{brk}")[0][:2] == (3, 4)
    # A tab after any break is indentation: libyaml rejects it in block context, we do in flow.
    indentation = "tab characters cannot be used for indentation"
    assert _errors(f"a:{brk}\tb: 1{brk}") == [(2, 1, "", indentation)]
    assert _errors(f"a: [b,{brk}\tc,{brk}{brk}\td]{brk}") == [(2, 1, "", indentation), (4, 1, "", indentation)]


def test_encoding_errors_have_positions() -> None:
    assert _errors(b"a: 1\nb: ok\xc3(\n") == [(2, 6, "", "the document is not valid UTF-8 (byte 0xc3)")]
    assert _errors("a: 1\nb: x\ud800") == [(2, 5, "", "invalid character U+D800 (an unpaired surrogate)")]
    message = "the character U+0000 is not allowed in YAML; write it as an escape in double quotes"
    assert _errors("a: 1\nb: é\x00") == [(2, 5, "", message)]


def test_errors_carry_source_and_are_sorted() -> None:
    with pytest.raises(WorkflowValidationError) as info:
        load_strict_yaml("b: !!str x\na: &q 1\nb: 2\n", source="flow.yaml")
    assert info.value.source == "flow.yaml"
    assert [(e.line, e.column) for e in info.value.errors] == [(1, 4), (2, 4), (3, 1)]
    assert str(info.value).startswith("flow.yaml:1:4: b: tags such as '!!str' are not allowed")


def test_syntax_error_keeps_earlier_problems_and_stops() -> None:
    errors = _errors("a: &x 1\nb: 'open\nc: &y 2\n")
    assert [(line, col) for line, col, _, _ in errors] == [(1, 4), (4, 1)]


def test_pure_python_fallback_agrees_on_the_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without libyaml the loader runs PyYAML's pure-Python parser: same data, same rejections
    # (positions of YAML syntax errors may differ; libyaml's are the ones pinned above).
    expected = {path: load_strict_yaml(path.read_bytes()).data for path in VALID}
    monkeypatch.setattr(sy, "_Parser", __import__("yaml").BaseLoader)
    for path, data in expected.items():
        assert load_strict_yaml(path.read_bytes()).data == data, path.name
    for path in INVALID_FILES:
        with pytest.raises(WorkflowValidationError):
            load_strict_yaml(path.read_bytes(), **INVALID[path.name][1])


def test_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        load_strict_yaml(42)  # type: ignore[arg-type]


# --- fast path == careful path, and nothing but WorkflowValidationError escapes -----------------


def _only_plain_data(value: Any, path: tuple[Any, ...], doc: YamlDocument) -> None:
    doc.value_position(path)
    doc.key_position(path)
    doc.scalar_style(path)
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            _only_plain_data(item, (*path, key), doc)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _only_plain_data(item, (*path, index), doc)
    else:
        assert type(value) is str


def _check_one(text: str | bytes) -> None:
    try:
        doc = load_strict_yaml(text, max_bytes=64 * 1024, max_depth=16)
    except WorkflowValidationError as exc:
        assert exc.errors and all(e.line >= 1 and e.column >= 1 and e.message for e in exc.errors)
        return
    _only_plain_data(doc.data, (), doc)
    # whatever the fast builder accepts, the careful builder accepts with the same data
    data = text.encode("utf-8") if isinstance(text, str) else text
    plain = data.decode("utf-8").removeprefix("\ufeff")
    problems = sy._Problems(plain)
    assert sy._build_careful(data, plain, {}, problems, 16) == doc.data and not problems.items


def _mutate(rng: random.Random, text: str) -> str:
    pieces = [*" \n\t:-?[]{},#&*!|>'\"%@`\\x0", "  ", ": ", "- ", "\n  ", "\n- ", "é", "\x85", "\ud800"]
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text) + 1)
        op = rng.random()
        if op < 0.4:
            text = text[:at] + rng.choice(pieces) + text[at:]
        elif op < 0.7:
            text = text[:at] + text[at + rng.randint(1, 3) :]
        elif op < 0.9:
            text = text[:at] + rng.choice(pieces) + text[at + 1 :]
        else:  # duplicate a slice: repeated keys and nesting
            start = rng.randrange(len(text) + 1)
            text = text[:at] + text[start : start + rng.randint(1, 40)] + text[at:]
    return text


def test_fuzz_mutated_corpus_and_random_bytes() -> None:
    rng = random.Random(20240607)  # fixed: a failure reproduces
    seeds = [p.read_bytes().decode("utf-8", "surrogateescape") for p in VALID + INVALID_FILES]
    for _ in range(3000):
        text = _mutate(rng, rng.choice(seeds))
        _check_one(text)
        try:  # back to the seed's own bytes where it was not UTF-8, else invalid UTF-8 bytes
            _check_one(text.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            _check_one(text.encode("utf-8", "surrogatepass"))
    alphabet = b" \n\t:-?[]{},#&*!|>'\"%@`abc\x00\x07\xc3\xa9\xff\xef\xbb\xbf"
    for _ in range(2000):
        _check_one(bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
        _check_one(rng.randbytes(rng.randint(0, 40)))
