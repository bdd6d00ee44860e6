"""The dynamic inventory package of docs/plugins.md, installed as pip would and found through the
plugin manager, answers from a real HTTP endpoint on 127.0.0.1 (the docs cannot drift)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from waterflow_core.interpreter.servers import listed_servers
from waterflow_core.plugins import PluginManager
from waterflow_core.providers import ServerGroupProvider

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"
INVENTORY = {"groups": {"web": ["web-1", "web-2"], "db": ["db-1"]}, "vars": {"web-1": {"role": "frontend"}}}


def _doc_block(first_line: str) -> str:
    blocks = re.findall(r"```(?:python|toml)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


@pytest.fixture
def endpoint() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(INVENTORY).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/waterflow.json"
    server.shutdown()
    server.server_close()


async def test_the_documented_dynamic_inventory_loads_and_answers(install: Callable[..., str], endpoint: str) -> None:
    source = _doc_block("# waterflow_http_inventory/__init__.py")
    assert len(source.strip().splitlines()) <= 45  # "a 30-line provider" (plus imports and blank lines)
    pyproject = _doc_block("# pyproject.toml of waterflow-http-inventory")
    assert 'http-inventory = "waterflow_http_inventory"' in pyproject
    assert '[project.entry-points."waterflow.providers"]' in pyproject
    install(source, name="http-inventory", module="waterflow_http_inventory", groups=("waterflow.providers",))

    provider_cls = PluginManager().provider_classes(ServerGroupProvider)["http-inventory"]
    provider = provider_cls({"url": endpoint})
    assert await provider.groups() == ["db", "web"]
    assert await provider.servers("web") == [
        {"name": "web-1", "vars": {"role": "frontend"}},
        {"name": "web-2", "vars": {}},
    ]
    # What each-server gets from it: the vars, and `--limit` with a group: pattern applied.
    # No agent registry in this test: a subclass whose servers count as live agents.
    live = type("LiveHttpInventory", (provider_cls,), {"lists_live_agents": True})({"url": endpoint})
    listed = await listed_servers(live, None, "web", ["web-2", "group:d*"])
    assert [(s.name, s.vars) for s in listed] == [("web-2", {})]
    listed = await listed_servers(live, None, "web", ["web-[1-9]"])
    assert [(s.name, s.vars) for s in listed] == [("web-1", {"role": "frontend"}), ("web-2", {})]
