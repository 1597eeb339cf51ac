"""Projector pages: `/out/NAME`, the outputs' mapping as JSON, and live updates.

A projector machine is a viewer: it plays the one shared stream and cuts,
warps and blends its slice in its own WebGL (web/projector.js), so the server
encodes once however many projectors there are. The mapping reaches it over
the websocket it already holds for the stream: `{"type": "outputs/watch"}`
answers with every output's mapping and subscribes that connection to the
`/out/...` and `/output/testcard` feedback only, the viewer-safe part of the
state. The rig itself lives with the outputs (server/outputs/rig.py); this
module sees it only through the `outputs` function the wiring passes in.
"""

from __future__ import annotations

import html
import http
from collections.abc import Callable
from typing import Any

from aiohttp import web

from server.control import ControlHub
from server.http.app import WEB_ROOT, App, error_response, http_response, json_response
from server.http.auth import Role
from server.http.client import Client

# What the pages watch: every output's settings and the test card switch.
TOPICS = ("/out/", "/output/testcard")

Snapshot = Callable[[], dict[str, Any]]  # {"outputs": {name: mapping}, "testcard": bool}


def missing_page(name: str, known: list[str]) -> bytes:
    """The 404 page of an output that does not exist: it says so, and lists the others."""
    others = ", ".join(f'<a href="/out/{html.escape(n)}">{html.escape(n)}</a>' for n in known)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>no such output</title>"
        "<link rel=stylesheet href=/viewer.css><link rel=stylesheet href=/out.css></head>"
        '<body class="missing"><main id="missing">'
        f"<h1>No output named {html.escape(name)!s}</h1>"
        "<p>Add it in config.toml (<code>[[outputs]]</code>), on the /map page, "
        f"or with <code>/out/{html.escape(name)}/add</code>.</p>"
        f"<p>Outputs now: {others or 'none'}.</p>"
        "</main></body></html>\n"
    ).encode()


def register(app: App, *, snapshot: Snapshot, control: ControlHub) -> None:
    """Add the projector routes and the `outputs/watch` websocket message to `app`."""

    async def output_page(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        state = snapshot()
        if name not in state["outputs"]:
            return http_response(
                http.HTTPStatus.NOT_FOUND,
                missing_page(name, sorted(state["outputs"])),
                "text/html; charset=utf-8",
            )
        body = (WEB_ROOT / "out.html").read_bytes()
        return http_response(http.HTTPStatus.OK, body, "text/html; charset=utf-8")

    async def one_output(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        state = snapshot()
        mapping = state["outputs"].get(name)
        if mapping is None:
            return error_response(http.HTTPStatus.NOT_FOUND, f"no output named {name!r}")
        return json_response({"output": mapping, "testcard": state["testcard"]})

    async def watch(client: Client, message: dict[str, Any]) -> dict[str, Any]:
        control.join(client, TOPICS)
        return {"type": "outputs", **snapshot()}

    app.add_route("GET", "/out/{name}", output_page)
    app.add_json("/api/outputs", snapshot)
    app.add_route("GET", "/api/outputs/{name}", one_output)
    app.add_message("outputs/watch", watch, role=Role.VIEWER)
