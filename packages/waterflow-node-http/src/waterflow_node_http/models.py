"""Inputs and outputs of ``http/request``: the contract users' workflows write against."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from waterflow_core.dsl.durations import parse_duration
from waterflow_core.shellsafe import to_shell_string

#: Bytes of response body kept by default.
DEFAULT_MAX_BODY = 256 * 1024
#: The largest ``max-body-bytes`` accepted. A step result may hold at most 1 MiB (the agent's
#: MAX_RESULT_BYTES) and a JSON body counts twice (``body`` and the parsed ``json``), so 384 KiB
#: keeps a full response, its parse and its headers below the limit.
MAX_BODY_LIMIT = 384 * 1024
DEFAULT_TIMEOUT = 30.0
MAX_REDIRECTS = 10
_METHOD = re.compile(r"[A-Za-z]+")

# Values from a single `$<< >>` keep their type (a number, a boolean); headers, query values and
# form fields are text on the wire, coerced the way GitHub coerces values into strings.
Text = Annotated[str, BeforeValidator(lambda v: v if isinstance(v, str) else to_shell_string(v))]


def _query_value(value: object) -> str | list[str]:
    # A list repeats the parameter (`tags=x&tags=y`); anything else is one text value.
    if isinstance(value, list):
        return [v if isinstance(v, str) else to_shell_string(v) for v in value]
    return value if isinstance(value, str) else to_shell_string(value)


QueryValue = Annotated[str | list[str], BeforeValidator(_query_value)]


class BasicAuth(BaseModel):
    """HTTP basic authentication (``Authorization: Basic ...``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["basic"]
    username: Text
    password: Text = ""


class BearerAuth(BaseModel):
    """A bearer token (``Authorization: Bearer <token>``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["bearer"]
    token: Text


Auth = Annotated[BasicAuth | BearerAuth, Field(discriminator="type")]


class RequestInputs(BaseModel):
    """``with:`` of ``http/request``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: str = Field(description="Absolute http:// or https:// URL.")
    method: str = Field("GET", description="HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD, ...).")
    headers: dict[str, Text] = Field(default_factory=dict, description="Request headers.")
    query: dict[str, QueryValue] = Field(default_factory=dict, description="Query parameters added to the URL.")
    json_: Any = Field(None, alias="json", description="Request body sent as JSON (sets Content-Type).")
    body: str | None = Field(None, description="Request body sent as text, as is.")
    form: dict[str, Text] | None = Field(None, description="Request body sent form-urlencoded.")
    timeout: float = Field(DEFAULT_TIMEOUT, description="Whole request including the body: 30s, 500ms, 2m or seconds.")
    expect_status: list[int] | None = Field(
        None, alias="expect-status", description="Accepted status codes; unset: any 2xx. Others fail the step."
    )
    follow_redirects: bool = Field(
        True, alias="follow-redirects", description=f"Follow up to {MAX_REDIRECTS} redirects."
    )
    verify: bool = Field(True, description="Verify the server's TLS certificate.")
    ca_bundle: str | None = Field(
        None, alias="ca-bundle", description="PEM file of CA certificates to trust instead of the system's."
    )
    auth: Auth | None = Field(None, description="{type: basic, username, password} or {type: bearer, token}.")
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY,
        alias="max-body-bytes",
        ge=0,
        le=MAX_BODY_LIMIT,
        description="Bytes of response body kept; a longer body is cut and `truncated` is true.",
    )

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme not in ("http", "https") or "://" not in value:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @field_validator("method")
    @classmethod
    def _token(cls, value: str) -> str:
        if not _METHOD.fullmatch(value):
            raise ValueError(f"{value!r} is not an HTTP method")
        return value.upper()

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @field_validator("expect_status", mode="before")
    @classmethod
    def _status_list(cls, value: object) -> object:
        return [value] if isinstance(value, int | str) else value  # `expect-status: 204` is fine too

    @field_validator("expect_status")
    @classmethod
    def _status_range(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value:
                raise ValueError("must list at least one status code (omit it to accept any 2xx)")
            bad = [code for code in value if not 100 <= code <= 599]
            if bad:
                raise ValueError(f"status codes must be 100-599, got {bad}")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> RequestInputs:
        fields = (("json", "json_"), ("body", "body"), ("form", "form"))
        given = [name for name, attr in fields if attr in self.model_fields_set]
        if len(given) > 1:
            raise ValueError(f"json, body and form are mutually exclusive; got {' and '.join(given)}")
        if not self.verify and self.ca_bundle is not None:
            raise ValueError("ca-bundle has no effect with verify: false; set only one of them")
        return self

    def expected(self, status: int) -> bool:
        """Whether ``status`` counts as success."""
        return 200 <= status <= 299 if self.expect_status is None else status in self.expect_status

    def expected_text(self) -> str:
        """What was expected, for messages."""
        return "2xx" if self.expect_status is None else ", ".join(map(str, self.expect_status))


class RequestOutputs(BaseModel):
    """``steps.<id>.outputs`` of ``http/request``."""

    model_config = ConfigDict(populate_by_name=True)

    status: int = Field(description="Status code of the final response.")
    headers: dict[str, str] = Field(
        description="Response headers, names lower case; repeated headers joined with ', '."
    )
    body: str = Field(description="Response body as text (decoded by its charset), at most max-body-bytes.")
    json_: Any = Field(None, alias="json", description="The parsed body when the response is JSON, else null.")
    elapsed_ms: int = Field(
        alias="elapsed-ms", description="Milliseconds from sending the request to the end of the body."
    )
    url: str = Field(description="Final URL after redirects (credentials removed).")
    truncated: bool = Field(False, description="True when the body was longer than max-body-bytes.")
