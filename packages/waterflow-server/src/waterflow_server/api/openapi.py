"""OpenAPI 3 at ``/openapi.json`` and Swagger UI at ``/docs``, with every asset served locally.

Servers often run where browsers cannot reach a CDN, so the UI's JavaScript and CSS come from
the ``swagger-ui-bundle-v2`` wheel (Swagger UI 5, which renders OpenAPI 3.1) and are served by
this server under ``/docs/assets/``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blacksheep import Application, Request, Response
from blacksheep.contents import Content
from blacksheep.server.openapi.common import ContentInfo, ResponseInfo
from blacksheep.server.openapi.ui import UIOptions, UIProvider
from blacksheep.server.openapi.v3 import OpenAPIHandler
from blacksheep.server.responses import moved_permanently
from openapidocs.v3 import (
    Components,
    HTTPSecurity,
    Info,
    MediaType,
    OpenAPI,
    RequestBody,
    Schema,
    Security,
    SecurityRequirement,
)
from openapidocs.v3 import Response as ResponseDoc

from .models import ErrorBody, SubmitRequest, ValidateRequest

ASSETS_PATH = "/docs/assets"
_ASSETS = {
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": b"text/javascript; charset=utf-8",
    "swagger-ui.css": b"text/css; charset=utf-8",
    "favicon-32x32.png": b"image/png",
}

_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>{title}</title>
    <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" />
    <link rel="stylesheet" href="{assets}/swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="{assets}/swagger-ui-bundle.js"></script>
    <script src="{assets}/swagger-ui-standalone-preset.js"></script>
    <script>
      window.ui = SwaggerUIBundle({{
        url: "{spec}",
        dom_id: "#swagger-ui",
        deepLinking: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "BaseLayout"
      }});
    </script>
  </body>
</html>
"""


def swagger_ui_dir() -> Path | None:
    """Folder of the vendored Swagger UI, or ``None`` when the wheel is missing."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(str(swagger_ui_bundle.swagger_ui_path))


class LocalSwaggerUI(UIProvider):
    """Swagger UI whose page references only ``/docs/assets/*`` on this server."""

    def __init__(self, ui_path: str = "/docs") -> None:
        super().__init__(ui_path)
        self._page = b""

    @property
    def default_ui_files(self) -> Any:  # the base class wants one; ours are local
        from blacksheep.server.openapi.ui import UIFilesOptions

        return UIFilesOptions(
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js", css_url=f"{ASSETS_PATH}/swagger-ui.css"
        )

    def build_ui(self, options: UIOptions) -> None:
        self._page = _PAGE.format(
            title=html.escape(options.page_title), assets=ASSETS_PATH, spec="/openapi.json"
        ).encode("utf-8")

    def get_ui_handler(self) -> Callable[[Request], Response]:
        def swagger_page(request: Request) -> Response:
            if not request.path.endswith("/"):
                return moved_permanently(f"/{request.path.strip('/')}/")
            return Response(
                200, [(b"Cache-Control", b"no-cache")], Content(b"text/html; charset=utf-8", self._page)
            )

        return swagger_page


class WaterflowOpenAPI(OpenAPIHandler):
    """BlackSheep's generator plus what it cannot infer: the YAML-or-JSON bodies and the bearer token."""

    def on_docs_generated(self, docs: OpenAPI) -> None:
        self._document_bodies(docs)
        self._document_bearer(docs)

    def _document_bearer(self, docs: OpenAPI) -> None:
        # Optional: a server on loopback without tokens needs none. Swagger UI's Authorize button
        # then sends the token with "Try it out".
        components = docs.components or Components()
        components.security_schemes = {
            **(components.security_schemes or {}),
            "bearer": HTTPSecurity(
                scheme="bearer",
                description="An API token (WATERFLOW_API_TOKEN or the token file); read tokens may only GET.",
            ),
        }
        docs.components = components
        docs.security = Security([SecurityRequirement("bearer", [])], optional=True)
        error = MediaType(schema=self.get_schema_by_type(ErrorBody))
        for path, item in (docs.paths or {}).items():
            if path == "/healthz":
                continue
            for method in ("get", "post", "delete"):
                operation = getattr(item, method, None)
                if operation is None:
                    continue
                operation.responses.setdefault(
                    "401", ResponseDoc("No bearer token, or not a valid one.", content={"application/json": error})
                )
                if method != "get":
                    operation.responses.setdefault(
                        "403", ResponseDoc("The token is read-only.", content={"application/json": error})
                    )

    def _document_bodies(self, docs: OpenAPI) -> None:
        yaml_text = MediaType(schema=Schema(type="string", description="The workflow YAML."))
        bodies = {
            ("/v1/workflows", "post"): SubmitRequest,
            ("/v1/validate", "post"): ValidateRequest,
            ("/v1/plan", "post"): ValidateRequest,
        }
        for (path, method), model in bodies.items():
            item = (docs.paths or {}).get(path)
            operation = getattr(item, method, None) if item is not None else None
            if operation is None:
                continue
            operation.request_body = RequestBody(
                required=True,
                description="The workflow as YAML, or a JSON envelope with the workflow text.",
                content={
                    "application/json": MediaType(schema=self.get_schema_by_type(model)),
                    "application/yaml": yaml_text,
                    "application/x-yaml": yaml_text,
                    "text/yaml": yaml_text,
                },
            )
        from .rerun import RERUN_PATH, RerunRequest  # imported here: that module imports this one

        rerun = (docs.paths or {}).get(RERUN_PATH)
        if rerun is not None and rerun.post is not None:
            rerun.post.request_body = RequestBody(
                required=False,
                description="What to skip: failed_only, from_step (job/step); id: the rerun's id (idempotency key).",
                content={"application/json": MediaType(schema=self.get_schema_by_type(RerunRequest))},
            )
        from .signals import SIGNAL_PATH, SignalRequest  # imported here: that module imports this one

        item = (docs.paths or {}).get(SIGNAL_PATH)
        if item is not None and item.post is not None:
            item.post.request_body = RequestBody(
                required=False,
                description="The answer: approve (the default) or reject, with the gate's typed fields.",
                content={"application/json": MediaType(schema=self.get_schema_by_type(SignalRequest))},
            )


def error_responses(*statuses: int) -> dict[int | str, str | ResponseInfo]:
    """OpenAPI response docs for error statuses (all share :class:`ErrorBody`)."""
    texts = {
        400: "Malformed request (not JSON, wrong shape, bad parameter).",
        404: "No run with this id.",
        409: "A run with this id is running.",
        413: "Request body over the size limit.",
        415: "Content type other than JSON or YAML (what a cross-site form or text/plain post would send).",
        422: "Invalid workflow or inputs (errors lists every problem with line and column), "
        "or a workflow too costly to check (code too_complex).",
        429: "Too many follow streams open (code too_many_streams).",
        503: "Temporal is unavailable, or the server is busy validating other workflows (code busy).",
    }
    return {
        status: ResponseInfo(texts.get(status, "Error."), content=[ContentInfo(type=ErrorBody)])
        for status in statuses
    }


def install_api_docs(app: Application, version: str) -> WaterflowOpenAPI:
    """Serve ``/openapi.json``, ``/docs`` and the UI's assets; return the docs handler."""
    docs = WaterflowOpenAPI(
        info=Info(
            title="Waterflow API",
            version=version,
            description="Submit, follow and cancel Waterflow runs. All run state lives in Temporal.",
        ),
        ui_path="/docs",
    )
    docs.ui_providers = [LocalSwaggerUI("/docs")]
    docs.bind_app(app)
    folder = swagger_ui_dir()
    cache: dict[str, bytes] = {}

    @docs.ignore()
    async def swagger_asset(request: Request, name: str) -> Response:
        from .problems import APIError

        content_type = _ASSETS.get(name)
        if content_type is None or folder is None:
            raise APIError(404, "not_found", f"no such asset: {name}")
        if name not in cache:
            cache[name] = (folder / name).read_bytes()
        headers = [(b"Cache-Control", b"public, max-age=86400")]
        return Response(200, headers, Content(content_type, cache[name]))

    app.router.add_get(ASSETS_PATH + "/{name}", swagger_asset)
    return docs
