"""The web console's serving: /ui files, their security headers, traversal attempts, the token
split between the public files and ``GET /v1/console``, and the files' place in the wheel."""

from __future__ import annotations

import asyncio
import http.client
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from waterflow_server.console.serving import CSP, STATIC_DIR, static_files
from waterflow_testing.server import StartServer

Api = Any  # the `api` fixture of conftest.py
OPERATOR = "op-" + "c" * 29
SERVER_PACKAGE = Path(__file__).resolve().parents[1]
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
CONTRACT_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "dom.js": "text/javascript",
    "style.css": "text/css",
    "pages/runs.js": "text/javascript",
}
TRAVERSALS = [
    "/ui/../api/app.py",
    "/ui/%2e%2e/api/app.py",
    "/ui/%2E%2E/%2E%2E/console/serving.py",
    "/ui/..%2f..%2fconsole%2fserving.py",
    "/ui/%2e%2e%2f%2e%2e%2fsettings.py",
    "/ui/..\\..\\settings.py",
    "/ui/../serving.py",
    "/ui/../__init__.py",
    "/ui//etc/passwd",
    "/ui/%2fetc%2fpasswd",
    "/ui/pages/../../serving.py",
    "/ui/static/app.js",
    "/ui/serving.py",
    "/ui/app.js%00.html",
    "/ui/nope.js",
    "/ui/pages/",
    "/ui/pages",
]


def raw_get(base_url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` exactly as written: no client normalizes the dots or the escapes away."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def assert_security_headers(headers: httpx.Headers | dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, headers.get(name))
    assert "access-control-allow-origin" not in headers


async def test_the_shell_and_its_modules_are_served_with_the_security_headers(api: Api) -> None:
    for path in ("/ui", "/ui/"):
        response = await api.http.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert_security_headers(response.headers)
        assert '<main id="view"' in response.text
        assert '<script type="module" src="/ui/app.js">' in response.text
    for name, media in CONTRACT_FILES.items():
        response = await api.http.get(f"/ui/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].split(";")[0] == media, name
        assert response.headers["cache-control"] == "no-cache"
        assert_security_headers(response.headers)
        assert response.content == (STATIC_DIR / name).read_bytes()


async def test_root_redirects_to_the_console(api: Api) -> None:
    response = await api.http.get("/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/ui/"


def test_the_console_has_nothing_the_csp_would_block_or_that_parses_data_as_html() -> None:
    # The CSP forbids inline scripts, styles and handlers: the page would silently break.
    index = (STATIC_DIR / "index.html").read_text()
    for script in re.findall(r"<script[^>]*>", index):
        assert "src=" in script, script
    assert "<style" not in index
    assert not re.search(r"\s(on[a-z]+|style)\s*=", index)
    # No CDN: every reference stays on this server.
    assert not re.search(r"(src|href)=\"(https?:)?//", index)
    for name in static_files():
        if name.endswith(".js"):
            text = (STATIC_DIR / name).read_text()
            found = re.findall(r"\.(innerHTML|outerHTML|insertAdjacentHTML)\b|document\.write|\beval\(", text)
            assert not found, f"{name}: {found}"


async def test_traversal_and_unknown_files_are_not_found(api: Api) -> None:
    for path in TRAVERSALS:
        status, headers, body = await asyncio.to_thread(raw_get, api.url, path)
        assert status in (400, 404), (path, status, body[:200])
        assert b"import" not in body and b"root:" not in body, path
        if status == 404 and headers.get("content-type", "").startswith("application/json"):
            assert b'"code":"not_found"' in body, path


async def test_unknown_console_files_answer_404_with_the_headers(api: Api) -> None:
    response = await api.http.get("/ui/pages/unknown.js")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert_security_headers(response.headers)


def test_the_allowlist_holds_only_regular_served_files(tmp_path: Path) -> None:
    root = tmp_path / "static"
    (root / "pages").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html>")
    (root / "pages" / "runs.js").write_text("export {}")
    (root / "notes.py").write_text("secret = 1")
    (root / ".hidden.js").write_text("x")
    (root / ".git").mkdir()
    (root / ".git" / "config.js").write_text("x")
    outside = tmp_path / "secret.js"
    outside.write_text("the key")
    (root / "link.js").symlink_to(outside)
    (root / "pages" / "up").symlink_to(tmp_path)
    assert static_files(root) == {"index.html": root / "index.html", "pages/runs.js": root / "pages" / "runs.js"}


async def test_console_info_without_authentication(api: Api) -> None:
    response = await api.http.get("/v1/console")
    assert response.status_code == 200, response.text
    info = response.json()
    assert info == {
        "version": info["version"],
        "namespace": api.settings.temporal.namespace,
        "temporal_ui_url": None,
        "auth": False,
    }
    assert info["version"]


async def test_openapi_documents_the_console_endpoint_but_not_the_files(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/console"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ConsoleInfo")
    properties = spec["components"]["schemas"]["ConsoleInfo"]["properties"]
    assert {"version", "namespace", "temporal_ui_url", "auth"} <= set(properties)
    assert not [path for path in spec["paths"] if path == "/" or path.startswith("/ui")]


def test_files_are_public_but_console_info_needs_the_token(start_server: StartServer) -> None:
    server = start_server(token=OPERATOR, env={"WATERFLOW_CONSOLE_TEMPORAL_UI_URL": "http://127.0.0.1:8233"})
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for path in ("/ui", "/ui/", *(f"/ui/{name}" for name in CONTRACT_FILES)):
            response = http.get(path)
            assert response.status_code == 200, (path, response.text)
            assert_security_headers(response.headers)
        assert http.get("/", follow_redirects=False).status_code == 302
        refused = http.get("/v1/console")
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        wrong = http.get("/v1/console", headers={"authorization": "Bearer " + "x" * 32})
        assert wrong.status_code == 401
        info = http.get("/v1/console", headers={"authorization": f"Bearer {OPERATOR}"})
        assert info.status_code == 200, info.text
        assert info.json()["auth"] is True
        assert info.json()["temporal_ui_url"] == "http://127.0.0.1:8233"
        # Only the files are public: the API behind them still asks for the token.
        assert http.get("/v1/workflows").status_code == 401
        assert http.get("/uix").status_code == 401
    # The /ui prefix, which skips the token check, must not lead anywhere else.
    for path in (
        "/ui/../v1/console",
        "/ui/%2e%2e/v1/console",
        "/ui/..%2fv1%2fconsole",
        "/ui/../v1/workflows",
        "/ui/%2E%2E/v1/agents",
    ):
        status, _, body = raw_get(server.url, path)
        assert status in (400, 401, 404), (path, status, body[:200])
        assert b"namespace" not in body and b'"runs"' not in body and b'"agents"' not in body, path


def test_a_bad_temporal_ui_url_is_refused_at_start(start_server: StartServer) -> None:
    server = start_server(env={"WATERFLOW_CONSOLE_TEMPORAL_UI_URL": "javascript:alert(1)"}, ready=False)
    assert server.wait(60) != 0
    assert "WATERFLOW_CONSOLE_TEMPORAL_UI_URL" in server.output and "https?://" in server.output


@pytest.mark.integration
def test_the_wheel_ships_the_console(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=SERVER_PACKAGE,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("waterflow_server-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in CONTRACT_FILES:
        assert f"waterflow_server/console/static/{name}" in names, name
    assert "waterflow_server/console/serving.py" in names
