"""Secret masking: the forms a secret is printed in, fragments at cuts, sets that grow."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from waterflow_agent.masking import MASK, MIN_FRAGMENT, SecretMasker, SecretSet, secret_forms

pytestmark = pytest.mark.unit

SECRET = 'p@ss w/"q\\ü&=+rd-42'


def test_plain_and_multiline_values() -> None:
    pem = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2E\nxyz\n-----END KEY-----"
    masker = SecretMasker([SECRET, pem])
    assert masker.text(f"token={SECRET}; again {SECRET}") == "token=***; again ***"
    assert masker.text("line AAAAB3NzaC1yc2E printed alone") == "line *** printed alone"
    assert masker.text("xyz is too short to be a line of its own") == "xyz is too short to be a line of its own"
    assert masker.value({"k": [f"a{SECRET}", 3, None], SECRET: True}) == {"k": ["a***", 3, None], "***": True}


def test_longest_secret_wins() -> None:
    masker = SecretMasker(["abcd", "abcdefgh"])
    assert masker.text("xabcdefghx abcdx") == "x***x ***x"


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
        lambda s: urllib.parse.quote(s, safe=""),
        lambda s: urllib.parse.quote(s),
        lambda s: urllib.parse.quote_plus(s),
        lambda s: json.dumps(s)[1:-1],
        lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    ],
    ids=["base64", "base64url", "url", "url-path", "url-plus", "json", "json-unicode"],
)
def test_encoded_forms_standalone(encode) -> None:  # type: ignore[no-untyped-def]
    encoded = encode(SECRET)
    assert encoded != SECRET
    masked = SecretMasker([SECRET]).text(f"value: {encoded} end")
    assert masked == "value: *** end", masked


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc", "abcd"])
@pytest.mark.parametrize("suffix", ["", "x", "xy", "\n"])
def test_base64_inside_a_longer_stream_at_every_alignment(prefix: str, suffix: str) -> None:
    # `echo "user:$TOKEN" | base64`: the secret's bytes sit at any offset of the encoded stream.
    stream = base64.b64encode(f"{prefix}{SECRET}{suffix}".encode()).decode()
    masked = SecretMasker([SECRET]).text(stream)
    assert MASK in masked
    # What is left are at most the few characters that also encode the neighbouring bytes.
    assert len(masked.replace(MASK, "")) <= len(base64.b64encode((prefix + suffix).encode())) + 4


def test_short_values_are_not_masked() -> None:
    assert secret_forms("abc") == set()
    assert SecretMasker(["abc", "on"]).text("abc is on") == "abc is on"
    assert not SecretMasker(["abc"])


def test_fragments_at_line_edges_are_masked() -> None:
    masker = SecretMasker(["sup3rS3cretValue"])
    # A long line logged in two pieces: the end of one piece, the start of the next.
    assert masker.text("x" * 20 + "sup3rS3c") == "x" * 20 + MASK
    assert masker.text("retValue and more") == "*** and more"
    # An output tail cut inside the secret, several lines.
    assert masker.text("cretValue\nnext line\nlast sup3rS") == "***\nnext line\nlast ***"
    # A whole line that is the rest of the secret.
    assert masker.text("3cretValue") == MASK
    assert masker.text("CRLF ends sup3r\r") == "CRLF ends ***\r"


def test_fragments_shorter_than_the_minimum_stay() -> None:
    masker = SecretMasker(["sup3rS3cretValue"])
    short = "sup3rS3cretValue"[: MIN_FRAGMENT - 1]
    assert masker.text(f"ends with {short}") == f"ends with {short}"
    # Only at the edges: the same characters inside a line are ordinary text.
    assert masker.text("the sup3r thing") == "the sup3r thing"


def test_base64_wrapped_at_76_columns() -> None:
    secret = "k" * 40 + "-long-token-" + "z" * 40
    encoded = base64.encodebytes(secret.encode()).decode()  # 76-column lines, like `base64`
    assert "\n" in encoded.strip()
    masked = SecretMasker([secret]).text(encoded)
    assert all(MASK in line for line in masked.strip().split("\n")), masked


def test_masker_sees_values_added_to_its_set() -> None:
    run = SecretSet()
    masker = SecretMasker(run)
    assert masker.text("later-secret") == "later-secret"
    assert run.add(["later-secret"])
    assert masker.text("later-secret") == MASK


def test_set_limit() -> None:
    bounded = SecretSet(limit=2)
    assert bounded.add(["first-value", "second-value"])
    assert not bounded.add(["third-value"])
    assert len(bounded) == 2
    assert bounded.add(["first-value"])  # already there: nothing refused
    # The step's own values are masked through its own set even when the run's is full.
    masker = SecretMasker(bounded, ["third-value"])
    assert masker.text("first-value third-value") == "*** ***"
