"""The ``file/transfer`` node: download, upload, copy or write a file, atomically and confined."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from waterflow_core.dsl import parse_duration
from waterflow_core.node import Node, NodeContext

from .atomic import READ_CHUNK, AtomicFile, Existing, Ownership
from .blocking import blocking
from .errors import bad_input, failed
from .netguard import check_url, is_url, parse_url
from .remote import download, upload
from .roots import allowed_roots, resolve_destination, resolve_source

DEFAULT_TIMEOUT = 30.0
_CHECKSUM_RE = re.compile(r"sha256:([0-9a-fA-F]{64})")
_MODE_RE = re.compile(r"[0-7]{3,5}")
_OWNER_RE = re.compile(r"[^:\s]+(?::[^:\s]+)?")

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class TransferInputs(BaseModel):
    """``with:`` of ``file/transfer``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str | None = Field(
        None, description="An http/https URL to download, or a file on the agent to copy or upload."
    )
    content: str | None = Field(None, description="Text to write (UTF-8) instead of reading a source.")
    destination: str = Field(
        description="A file path on the agent, or an http/https URL to upload to with `method`."
    )
    method: Literal["PUT", "POST"] = Field("PUT", description="HTTP method of an upload (URL destination).")
    checksum: str | None = Field(
        None, description="Expected content as `sha256:<hex>`; a mismatch fails the step and writes nothing."
    )
    mode: str | None = Field(
        None, description='Octal file mode such as "0644"; default: kept on replace, 0666 & ~umask when created.'
    )
    owner: str | None = Field(None, description="`user[:group]` (names or numeric ids) to own the file.")
    overwrite: bool = Field(True, description="Replace an existing destination; false leaves it untouched.")
    max_bytes: int | None = Field(
        None, alias="max-bytes", ge=0, description="Refuse content larger than this many bytes."
    )
    timeout: Seconds = Field(
        DEFAULT_TIMEOUT,
        description="HTTP connect/read/write timeout per operation (a duration such as 30s); the step's "
        "own `timeout:` bounds the whole transfer.",
    )

    @field_validator("checksum")
    @classmethod
    def _checksum(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _CHECKSUM_RE.fullmatch(value.strip())
        if match is None:
            raise ValueError("checksum must look like sha256:<64 hex digits>")
        return f"sha256:{match.group(1).lower()}"

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip()  # a number from a single $<< >> reads as its digits
        if not _MODE_RE.fullmatch(text) or int(text, 8) > 0o7777:
            raise ValueError(f"mode must be an octal string such as \"0644\", got {value!r}")
        return text

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        if value is not None and not _OWNER_RE.fullmatch(value):
            raise ValueError(f"owner must look like user or user:group, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> TransferInputs:
        if (self.source is None) == (self.content is None):
            raise ValueError("give exactly one of source or content")
        if is_url(self.destination):
            if self.source is not None and is_url(self.source):
                raise ValueError("source and destination are both URLs; one of them must be a path on the agent")
            for name in ("mode", "owner"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} only applies when destination is a path on the agent")
            if not self.overwrite:
                raise ValueError("overwrite: false only applies when destination is a path on the agent")
        return self

    @property
    def mode_bits(self) -> int | None:
        """``mode`` as an integer."""
        return None if self.mode is None else int(self.mode, 8)


class TransferOutputs(BaseModel):
    """``steps.<id>.outputs`` of ``file/transfer``."""

    model_config = ConfigDict(populate_by_name=True)

    path: str = Field(description="Real path of the written file (or the upload URL).")
    bytes: int = Field(description="Size of the content in bytes.")
    sha256: str = Field(description="Hex SHA-256 of the content.")
    changed: bool = Field(description="False when the destination already had this content, mode and owner.")


class FileTransferNode(Node):
    """Move a file between a URL, the agent's disk and inline text, atomically."""

    type = "file/transfer"
    version = "1.0.0"
    description = "Download, upload, copy or write a file atomically, confined to the agent's allowed roots."

    class Inputs(TransferInputs):
        """``with:`` of ``file/transfer`` (see :class:`TransferInputs`)."""

    class Outputs(TransferOutputs):
        """``steps.<id>.outputs`` of ``file/transfer`` (see :class:`TransferOutputs`)."""

    async def run(self, ctx: NodeContext, inputs: TransferInputs) -> TransferOutputs:
        roots = allowed_roots(ctx.workdir)
        if is_url(inputs.destination):
            return await _upload(ctx, inputs, roots)
        return await _write(ctx, inputs, roots)


async def _upload(ctx: NodeContext, inputs: TransferInputs, roots: list[Path]) -> TransferOutputs:
    url = parse_url(inputs.destination, "destination")
    await check_url(url, "destination")
    content = None if inputs.content is None else inputs.content.encode()
    path = None if inputs.source is None else resolve_source(inputs.source, ctx.workdir, roots)
    if inputs.checksum is not None:
        # Checked before sending: a server cannot be made to forget a body it already received.
        digest = hashlib.sha256(content).hexdigest() if content is not None else await blocking(_hash_file, path)
        _verify(inputs.checksum, digest, "source")
    sent, digest = await upload(
        url, inputs.method, content=content, path=path, timeout=inputs.timeout, max_bytes=inputs.max_bytes
    )
    ctx.log.info("uploaded %d bytes (sha256 %s) to %s with %s", sent, digest, url, inputs.method)
    # Whether the server already had this content is unknowable here: an upload always changes.
    return TransferOutputs(path=str(url), bytes=sent, sha256=digest, changed=True)


async def _write(ctx: NodeContext, inputs: TransferInputs, roots: list[Path]) -> TransferOutputs:
    destination = resolve_destination(inputs.destination, ctx.workdir, roots)
    source_url = source_path = None
    if inputs.source is not None and is_url(inputs.source):
        source_url = parse_url(inputs.source, "source")
        await check_url(source_url, "source")
    elif inputs.source is not None:
        source_path = resolve_source(inputs.source, ctx.workdir, roots)
    owner = _ownership(inputs.owner)
    mode = inputs.mode_bits
    target = str(destination.path)

    try:
        out = AtomicFile(destination, roots, "destination", inputs.destination, inputs.max_bytes)
    except OSError as exc:
        raise _os_failure(target, exc) from None
    try:
        existing = await blocking(out.existing)
        if existing is not None and (not inputs.overwrite or _matches(inputs.checksum, existing)):
            return await _keep(ctx, out, existing, inputs, mode, owner)
        out.open()
        if inputs.content is not None:
            out.write(inputs.content.encode())
        elif source_url is not None:
            await download(source_url, out, timeout=inputs.timeout, heartbeat=ctx.heartbeat)
        else:
            assert source_path is not None
            await _copy(source_path, out)
        if inputs.checksum is not None:
            _verify(inputs.checksum, out.sha256, target)
        if existing is not None and (existing.sha256, existing.size) == (out.sha256, out.size):
            out.discard()  # same content: the file is not rewritten, only its metadata settled
            changed = await blocking(out.update_metadata, existing, mode, owner)
        else:
            await blocking(out.commit, existing, mode, owner)
            changed = True
        ctx.log.info("%s: %d bytes, sha256 %s, changed=%s", target, out.size, out.sha256, changed)
        return TransferOutputs(path=target, bytes=out.size, sha256=out.sha256, changed=changed)
    except OSError as exc:
        raise _os_failure(target, exc) from None
    finally:
        out.close()


def _os_failure(target: str, exc: OSError) -> Exception:
    # Permissions do not fix themselves between attempts; a full disk or a busy file may.
    return failed(f"{target}: {exc.strerror or exc}", retryable=not isinstance(exc, PermissionError))


async def _keep(
    ctx: NodeContext, out: AtomicFile, existing: Existing, inputs: TransferInputs, mode: int | None, owner: Ownership
) -> TransferOutputs:
    """Leave the existing destination's content as it is (overwrite false, or checksum met)."""
    target = str(out.destination.path)
    if inputs.checksum is not None and not _matches(inputs.checksum, existing):
        raise failed(
            f"{target} exists with sha256 {existing.sha256}, not {inputs.checksum}, and overwrite is false",
            retryable=False,
        )
    changed = await blocking(out.update_metadata, existing, mode, owner)
    why = "overwrite is false" if not inputs.overwrite else "it already has the expected checksum"
    ctx.log.info("%s: kept the existing file (%s), changed=%s", target, why, changed)
    return TransferOutputs(path=target, bytes=existing.size, sha256=existing.sha256, changed=changed)


async def _copy(source: Path, out: AtomicFile) -> None:
    fd = await blocking(os.open, source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while chunk := await blocking(os.read, fd, READ_CHUNK):
            out.write(chunk)
    finally:
        os.close(fd)


def _hash_file(path: Path | None) -> str:
    assert path is not None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(checksum: str | None, existing: Existing) -> bool:
    return checksum is not None and checksum == f"sha256:{existing.sha256}"


def _verify(checksum: str, actual: str, what: str) -> None:
    if checksum != f"sha256:{actual}":
        raise failed(
            f"checksum mismatch for {what}: expected {checksum}, got sha256:{actual}; nothing was written",
            retryable=False,
            expected=checksum,
            actual=f"sha256:{actual}",
        )


def _ownership(owner: str | None) -> Ownership:
    """Resolve ``user[:group]`` to ids on this agent (names or numbers)."""
    if owner is None:
        return Ownership()
    user, _, group = owner.partition(":")
    try:
        uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
    except KeyError:
        raise bad_input(f"owner: no user {user!r} on this agent", field="owner") from None
    gid = -1
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise bad_input(f"owner: no group {group!r} on this agent", field="owner") from None
    return Ownership(uid=uid, gid=gid)
