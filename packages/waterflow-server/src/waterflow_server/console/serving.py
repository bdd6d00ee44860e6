"""Serving the web console: ``/ui`` and its static files, ``/`` → ``/ui/``, and ``GET /v1/console``.

The files under ``static/`` are the whole console (ADR 0042). They are public: all data comes
from the /v1 API, which asks for the token. A request names a file by a key of the allowlist
built from ``static/`` when the app is created, so no request path is ever joined to a file
system path: ``..``, encoded dots, backslashes and symlinks cannot reach anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from blacksheep import Application, Response
from blacksheep.contents import Content
from blacksheep.server.openapi.common import ContentInfo, ResponseInfo
from pydantic import BaseModel, Field

from ..api.openapi import WaterflowOpenAPI
from ..api.problems import APIError, json_response, model_response

if TYPE_CHECKING:
    from ..api.app import AppState

STATIC_DIR = Path(__file__).parent / "static"
UI_PATH = "/ui"
CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"Content-Security-Policy", CSP.encode()),
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Referrer-Policy", b"no-referrer"),
    (b"X-Frame-Options", b"DENY"),
)
"""On every /ui answer: the console runs only its own scripts, in no frame, leaking no URL."""


class ConsoleInfo(BaseModel):
    """Answer of ``GET /v1/console``: what the web console shows about this server."""

    version: str
    namespace: str
    temporal_ui_url: str | None = Field(
        default=None, description="Base URL of the Temporal UI (console.temporal_ui_url); null: no links to it."
    )
    auth: bool = Field(description="Whether the API needs a bearer token.")


def static_files(root: Path = STATIC_DIR) -> dict[str, Path]:
    """The allowlist: ``"pages/runs.js"`` → its file, for each regular file of a served type.

    Symlinks and dot files are left out, so nothing outside ``root`` can be listed.
    """
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_symlink() or not path.is_file() or path.suffix not in CONTENT_TYPES:
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        found[relative.as_posix()] = path
    return found


def _headers(*extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [*SECURITY_HEADERS, *extra]


def _file_response(path: Path) -> Response:
    content_type = CONTENT_TYPES[path.suffix]
    # no-cache: the browser revalidates, so an upgraded server never runs a stale console.
    return Response(200, _headers((b"Cache-Control", b"no-cache")), Content(content_type, path.read_bytes()))


def _not_found(name: str) -> Response:
    body = APIError(404, "not_found", f"no such console file: {name[:200]!r}").body()
    return json_response(404, body, _headers())


def register_console_routes(app: Application, docs: WaterflowOpenAPI, state: AppState) -> None:
    """Add ``/``, ``/ui``, ``/ui/{path}`` and ``GET /v1/console`` to ``app``."""
    files = static_files()
    index = files["index.html"]

    @docs.ignore()
    async def root() -> Response:
        return Response(302, _headers((b"Location", f"{UI_PATH}/".encode())))

    @docs.ignore()
    async def console_index() -> Response:
        return _file_response(index)

    @docs.ignore()
    async def console_file(path: str) -> Response:
        found = files.get(path)
        if found is None:
            return _not_found(path)
        return _file_response(found)

    @docs(
        summary="Console settings",
        tags=["operations"],
        responses={
            200: ResponseInfo("What the web console shows about this server.", content=[ContentInfo(type=ConsoleInfo)])
        },
    )
    async def console_info() -> Response:
        """The server's version and namespace, the Temporal UI's URL (for links to runs) and whether
        the API needs a token. The web console reads it once when it loads."""
        info = ConsoleInfo(
            version=state.version,
            namespace=state.settings.temporal.namespace,
            temporal_ui_url=state.settings.temporal_ui_url,
            auth=bool(state.settings.tokens),
        )
        return model_response(200, info)

    app.router.add_get("/", root)
    app.router.add_get(UI_PATH, console_index)  # BlackSheep matches /ui/ with it too
    app.router.add_get(f"{UI_PATH}/{{path:path}}", console_file)
    app.router.add_get("/v1/console", console_info)
