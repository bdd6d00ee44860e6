"""file/transfer against a real HTTP server on 127.0.0.1 and real files in temporary directories."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import pwd
import socket
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from waterflow_core.node import NodeContext
from waterflow_core.plugins import PluginManager
from waterflow_core.registry import NodeRegistry
from waterflow_node_file import ROOTS_ENV, FileTransferNode, TransferOutputs
from waterflow_node_file.atomic import process_umask

PAYLOAD = b"hello file transfer\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def default_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the default roots (the workdir), whatever the outer environment says."""
    monkeypatch.delenv(ROOTS_ENV, raising=False)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    return path


@pytest.fixture
def ctx(workdir: Path) -> NodeContext:
    logger = logging.getLogger(f"test.file.{uuid.uuid4().hex}")
    logger.propagate = False
    return NodeContext(log=logger, workdir=workdir)


async def transfer(ctx: NodeContext, **with_: Any) -> TransferOutputs:
    node = FileTransferNode()
    return await node.run(ctx, FileTransferNode.Inputs.model_validate(with_))


async def refused(ctx: NodeContext, **with_: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await transfer(ctx, **with_)
    return info.value


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- success paths ------------------------------------------------------------------------------


async def test_download(ctx: NodeContext, workdir: Path, http_server: Any) -> None:
    http_server.files["a.bin"] = PAYLOAD
    out = await transfer(ctx, source=http_server.url("/files/a.bin"), destination="a.bin")
    target = workdir / "a.bin"
    assert out.model_dump(by_alias=True) == {
        "path": str(target), "bytes": len(PAYLOAD), "sha256": PAYLOAD_SHA, "changed": True
    }
    assert target.read_bytes() == PAYLOAD
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~process_umask()
    assert leftovers(workdir) == ["a.bin"]  # no temporary file left beside it


async def test_inline_content_with_mode(ctx: NodeContext, workdir: Path) -> None:
    out = await transfer(ctx, content="key=value\n", destination=str(workdir / "app.conf"), mode="0640")
    target = workdir / "app.conf"
    assert target.read_text() == "key=value\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert (out.bytes, out.sha256, out.changed) == (10, hashlib.sha256(b"key=value\n").hexdigest(), True)


async def test_copy_an_agent_file(ctx: NodeContext, workdir: Path) -> None:
    (workdir / "src").mkdir()
    (workdir / "src" / "data").write_bytes(PAYLOAD)
    out = await transfer(ctx, source="src/data", destination="copy")
    assert (workdir / "copy").read_bytes() == PAYLOAD
    assert (out.sha256, out.changed) == (PAYLOAD_SHA, True)


async def test_replacing_keeps_the_mode_unless_given(ctx: NodeContext, workdir: Path) -> None:
    target = workdir / "f"
    target.write_text("old")
    target.chmod(0o600)
    await transfer(ctx, content="new", destination="f")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600
    await transfer(ctx, content="newer", destination="f", mode="755")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


async def test_owner_by_name(ctx: NodeContext, workdir: Path) -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    await transfer(ctx, content="x", destination="owned", owner=me)
    assert (workdir / "owned").stat().st_uid == os.geteuid()
    error = await refused(ctx, content="x", destination="owned", owner="no-such-user-waterflow")
    assert error.non_retryable and "no-such-user-waterflow" in error.message


async def test_upload_by_put_and_post(ctx: NodeContext, workdir: Path, http_server: Any) -> None:
    (workdir / "report.txt").write_bytes(PAYLOAD)
    out = await transfer(ctx, source="report.txt", destination=http_server.url("/upload/report.txt"))
    assert http_server.uploads["/upload/report.txt"] == ("PUT", PAYLOAD)
    assert (out.path, out.bytes, out.sha256, out.changed) == (
        http_server.url("/upload/report.txt"), len(PAYLOAD), PAYLOAD_SHA, True
    )
    await transfer(ctx, content="inline", destination=http_server.url("/upload/inline"), method="POST")
    assert http_server.uploads["/upload/inline"] == ("POST", b"inline")


async def test_second_identical_run_is_unchanged(ctx: NodeContext, workdir: Path, http_server: Any) -> None:
    http_server.files["a"] = PAYLOAD
    target = workdir / "a"
    first = await transfer(ctx, source=http_server.url("/files/a"), destination="a")
    inode = target.stat().st_ino
    second = await transfer(ctx, source=http_server.url("/files/a"), destination="a")
    assert (first.changed, second.changed) == (True, False)
    assert second.sha256 == PAYLOAD_SHA and target.stat().st_ino == inode  # not rewritten
    assert (await transfer(ctx, content="same", destination="b")).changed
    assert not (await transfer(ctx, content="same", destination="b")).changed
    assert (await transfer(ctx, content="same", destination="b", mode="0600")).changed  # only the mode
    assert leftovers(workdir) == ["a", "b"]


# -- checksums and limits -----------------------------------------------------------------------


async def test_checksum_match_and_skip_when_already_there(ctx: NodeContext, workdir: Path, http_server: Any) -> None:
    http_server.files["a"] = PAYLOAD
    checksum = f"sha256:{PAYLOAD_SHA.upper()}"
    out = await transfer(ctx, source=http_server.url("/files/a"), destination="a", checksum=checksum)
    assert out.changed and (workdir / "a").read_bytes() == PAYLOAD
    again = await transfer(ctx, source=http_server.url("/files/a"), destination="a", checksum=checksum)
    assert not again.changed
    assert http_server.hits["/files/a"] == 1  # like get_url: a matching file is not downloaded again


async def test_checksum_mismatch_leaves_nothing(ctx: NodeContext, workdir: Path, http_server: Any) -> None:
    http_server.files["a"] = PAYLOAD
    error = await refused(ctx, source=http_server.url("/files/a"), destination="a", checksum="sha256:" + "0" * 64)
    assert error.type == "WaterflowStepFailed" and error.non_retryable
    assert "checksum mismatch" in error.message and PAYLOAD_SHA in error.message
    assert leftovers(workdir) == []
    (workdir / "keep").write_text("original")
    await refused(ctx, content="other", destination="keep", checksum="sha256:" + "0" * 64)
    assert leftovers(workdir) == ["keep"] and (workdir / "keep").read_text() == "original"


async def test_max_bytes_exceeded_leaves_nothing(ctx: NodeContext, workdir: Path, http_server: Any) -> None:
    http_server.files["a"] = PAYLOAD
    for path in ("/files/a", "/unsized/a"):  # refused from Content-Length, and while streaming
        error = await refused(ctx, source=http_server.url(path), destination="a", **{"max-bytes": 1000})
        assert error.non_retryable and "max-bytes" in error.message
        assert leftovers(workdir) == []
    out = await transfer(ctx, source=http_server.url("/unsized/a"), destination="a", **{"max-bytes": len(PAYLOAD)})
    assert out.bytes == len(PAYLOAD)
    (workdir / "big").write_bytes(PAYLOAD)
    error = await refused(ctx, source="big", destination=http_server.url("/upload/big"), **{"max-bytes": 10})
    assert error.non_retryable and "/upload/big" not in http_server.uploads


async def test_overwrite_false_keeps_the_existing_file(ctx: NodeContext, workdir: Path, http_server: Any) -> None:
    http_server.files["a"] = PAYLOAD
    (workdir / "a").write_text("mine")
    out = await transfer(ctx, source=http_server.url("/files/a"), destination="a", overwrite=False)
    assert (workdir / "a").read_text() == "mine"
    assert (out.changed, out.bytes, out.sha256) == (False, 4, hashlib.sha256(b"mine").hexdigest())
    assert http_server.hits["/files/a"] == 0
    error = await refused(ctx, content="x", destination="a", overwrite=False, checksum=f"sha256:{PAYLOAD_SHA}")
    assert error.non_retryable and "overwrite is false" in error.message
    created = await transfer(ctx, content="x", destination="new", overwrite=False)
    assert created.changed and (workdir / "new").read_text() == "x"


# -- confinement --------------------------------------------------------------------------------


async def test_dotdot_is_refused(ctx: NodeContext, workdir: Path, outside: Path) -> None:
    for destination in ("../outside/x", "sub/../../outside/x", str(workdir / ".." / "outside" / "x")):
        error = await refused(ctx, content="x", destination=destination)
        assert error.type == "WaterflowBadInput" and error.non_retryable
        assert destination in error.message and str(workdir) in error.message  # the path and the roots
    error = await refused(ctx, source="../outside/secret", destination="x")
    assert "source" in error.message
    assert leftovers(outside) == []


async def test_absolute_path_outside_the_roots_is_refused(ctx: NodeContext, workdir: Path, outside: Path) -> None:
    error = await refused(ctx, content="x", destination=str(outside / "x"))
    assert error.type == "WaterflowBadInput" and error.non_retryable
    assert str(outside / "x") in error.message and str(workdir) in error.message and ROOTS_ENV in error.message
    (outside / "secret").write_text("s")
    error = await refused(ctx, source=str(outside / "secret"), destination="copy")
    assert str(outside / "secret") in error.message
    assert leftovers(outside) == ["secret"] and leftovers(workdir) == []


async def test_symlink_escapes_are_refused(ctx: NodeContext, workdir: Path, outside: Path) -> None:
    (workdir / "link-dir").symlink_to(outside, target_is_directory=True)
    (outside / "target").write_text("theirs")
    (workdir / "link-file").symlink_to(outside / "target")
    for destination in ("link-dir/x", "link-file"):
        error = await refused(ctx, content="x", destination=destination)
        assert error.type == "WaterflowBadInput" and destination in error.message
    error = await refused(ctx, source="link-file", destination="copy")  # reading through a link too
    assert error.type == "WaterflowBadInput"
    assert (outside / "target").read_text() == "theirs" and leftovers(outside) == ["target"]
    # A symlink that stays inside the roots is followed: its target is replaced atomically.
    (workdir / "real").write_text("old")
    (workdir / "inside-link").symlink_to(workdir / "real")
    out = await transfer(ctx, content="new", destination="inside-link")
    assert out.path == str(workdir / "real") and (workdir / "real").read_text() == "new"
    assert (workdir / "inside-link").is_symlink()


async def test_roots_from_the_agent_environment(
    ctx: NodeContext, workdir: Path, outside: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv(ROOTS_ENV, os.pathsep.join([str(outside), str(other)]))
    await transfer(ctx, content="x", destination=str(outside / "x"))
    await transfer(ctx, content="y", destination=str(other / "y"))
    error = await refused(ctx, content="z", destination="z")  # the workdir is no root any more
    assert str(outside) in error.message and str(other) in error.message
    assert leftovers(workdir) == []


# -- network ------------------------------------------------------------------------------------


async def test_http_errors_and_retryability(ctx: NodeContext, workdir: Path, http_server: Any) -> None:
    error = await refused(ctx, source=http_server.url("/status/503"), destination="a")
    assert error.type == "WaterflowStepFailed" and not error.non_retryable and "503" in error.message
    error = await refused(ctx, source=http_server.url("/status/404"), destination="a")
    assert error.non_retryable and "404" in error.message
    error = await refused(ctx, content="x", destination=http_server.url("/status/500"))
    assert error.type == "WaterflowStepFailed" and not error.non_retryable and "PUT" in error.message
    error = await refused(ctx, content="x", destination=http_server.url("/status/403"), method="POST")
    assert error.non_retryable and "403" in error.message
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await refused(ctx, source=f"http://127.0.0.1:{port}/x", destination="a")
    assert error.type == "WaterflowStepFailed" and not error.non_retryable
    assert leftovers(workdir) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "https://[fe80::1]/x",
        "http://[fd00:ec2::254]/latest",
    ],
)
async def test_link_local_and_metadata_addresses_are_refused(ctx: NodeContext, workdir: Path, url: str) -> None:
    error = await refused(ctx, source=url, destination="a")
    assert error.type == "WaterflowBadInput" and error.non_retryable and "link-local" in error.message
    error = await refused(ctx, content="x", destination=url)
    assert error.type == "WaterflowBadInput"
    assert leftovers(workdir) == []


async def test_redirect_to_a_metadata_address_is_refused(ctx: NodeContext, workdir: Path, http_server: Any) -> None:
    source = http_server.url("/redirect?to=http://169.254.169.254/latest/meta-data/")
    error = await refused(ctx, source=source, destination="a")
    assert error.type == "WaterflowBadInput" and "169.254.169.254" in error.message
    assert http_server.hits["/redirect"] == 1 and leftovers(workdir) == []


async def test_cancellation_mid_download_removes_the_partial_file(
    ctx: NodeContext, workdir: Path, http_server: Any
) -> None:
    task = asyncio.create_task(transfer(ctx, source=http_server.url("/slow/x"), destination="big"))
    for _ in range(3000):  # a liveness bound, not a speed expectation
        partial = [p for p in workdir.iterdir() if p.name.endswith(".waterflow-tmp")]
        if partial and partial[0].stat().st_size > 0:
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the download never started writing")
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(workdir) == []


# -- inputs and registration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("with_", "field"),
    [
        ({"destination": "a"}, "source or content"),
        ({"source": "x", "content": "y", "destination": "a"}, "source or content"),
        ({"content": "x", "destination": "a", "checksum": "md5:abc"}, "sha256:<64 hex digits>"),
        ({"content": "x", "destination": "a", "mode": "rw-r--r--"}, "mode"),
        ({"content": "x", "destination": "a", "mode": "9999"}, "mode"),
        ({"content": "x", "destination": "a", "owner": "a:b:c"}, "owner"),
        ({"content": "x", "destination": "a", "max-bytes": -1}, "max-bytes"),
        ({"content": "x", "destination": "a", "timeout": "soon"}, "timeout"),
        ({"content": "x", "destination": "a", "overwrites": False}, "overwrites"),
        ({"source": "http://a/x", "destination": "http://b/y"}, "both URLs"),
        ({"content": "x", "destination": "http://b/y", "mode": "0644"}, "mode only applies"),
        ({"content": "x", "destination": "a", "method": "GET"}, "method"),
    ],
)
def test_bad_inputs_name_the_field(with_: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        FileTransferNode.Inputs.model_validate(with_)
    assert field in str(info.value)


async def test_unsupported_schemes_are_refused(ctx: NodeContext) -> None:
    for source in ("file:///etc/passwd", "ftp://127.0.0.1/x"):
        error = await refused(ctx, source=source, destination="a")
        assert error.type == "WaterflowBadInput" and "only http and https" in error.message


def test_yaml_strings_and_durations() -> None:
    inputs = FileTransferNode.Inputs.model_validate(
        {"content": "x", "destination": "a", "max-bytes": "10", "overwrite": "false", "timeout": "1m30s", "mode": 644}
    )
    assert (inputs.max_bytes, inputs.overwrite, inputs.timeout, inputs.mode_bits) == (10, False, 90.0, 0o644)


def test_registered_through_the_entry_point() -> None:
    found = {cls.type: info for cls, info in PluginManager(allowlist=["file"]).nodes()}
    assert found["file/transfer"].distribution == "waterflow-node-file"
    registry = NodeRegistry.from_plugins(PluginManager(allowlist=["file"]))
    assert registry.check_with("file/transfer", {"source": "$<< inputs.url >>", "destination": "a"}) == []
    assert [path for path, _ in registry.check_with("file/transfer", {"destination": "a", "sauce": "x"})]
