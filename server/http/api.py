"""The JSON API beside the pages: commands, models, the show, keyframe thumbnails.

`add_api(app, engine, saver)` adds the routes and websocket message types that
read the engine and the show: `/api/commands` (the registry), `/api/models`,
`/api/show` (admin), `/api/thumb/N`, and the admin's `show/import` and
`show/export` messages, and a performer's `preset/export` and `preset/import`
(one preset at a time: `{"type": "preset/export", "name": N}` answers
`{"type": "preset", "name": N, "preset": {...}}`, which `preset/import` takes back,
under the same or another name).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from models.bending import layer_count
from models.catalog import Catalog
from server import showfile
from server.commands import KEYFRAMES, describe, parse
from server.engine import Engine
from server.http.app import App, error_response, http_response
from server.http.auth import Role
from server.http.client import Client
from server.presets import PresetError, check_name, check_preset, check_presets
from server.showfile import ShowSaver


def add_api(
    app: App,
    engine: Engine,
    saver: ShowSaver,
    catalog: Catalog,
    *,
    on_import: Callable[[showfile.Show], None] | None = None,
) -> None:
    """Add the API routes and the show messages to `app` (before it starts)."""
    app.add_json("/api/commands", describe)
    app.status_extras["show"] = saver.status

    def models() -> Any:
        found = [
            {
                "name": m.name,
                "arch": m.arch,
                "kind": m.kind,
                "resolution": m.resolution,
                # Synthesis layers, 1-based, as /bend/N and /blend/layer/N number them.
                "layers": layer_count(m.arch, m.metadata.get("config") or {}, m.resolution),
                "current": m.name == engine.model.name,
                **({"error": m.error} if m.error is not None else {}),
            }
            for m in catalog.list(unreadable=True)  # a bad file is listed with its error
        ]
        return {"models": found}

    app.add_json("/api/models", models)
    app.add_json("/api/show", lambda: saver.show.to_json(), role=Role.ADMIN)

    async def thumbnail(request: web.Request) -> web.StreamResponse:
        """GET /api/thumb/N: keyframe N's thumbnail as JPEG (encoded off the event loop)."""
        try:
            n = int(request.match_info["n"])
        except ValueError:
            n = 0
        if not 1 <= n <= KEYFRAMES:
            return error_response(HTTPStatus.NOT_FOUND, f"keyframes are 1..{KEYFRAMES}")
        found = await asyncio.to_thread(engine.thumbs.jpeg, n)
        if found is None:
            return error_response(HTTPStatus.NOT_FOUND, f"keyframe {n} has no thumbnail yet")
        version, body = found
        response = http_response(HTTPStatus.OK, body, "image/jpeg")
        response.headers["ETag"] = f'"{version}"'
        return response

    app.add_route("GET", "/api/thumb/{n}", thumbnail)

    async def import_show(connection: Client, message: dict[str, Any]) -> dict[str, Any]:
        try:
            show = showfile.validate(message.get("show"), "imported show")
        except showfile.ShowFileError as exc:
            raise ValueError(str(exc)) from exc
        engine.import_show(show.models)
        engine.replace_presets(check_presets(show.presets))
        engine.submit([parse("/mod/clear", []), parse("/midi/clear", [])])
        engine.submit([parse(address, args) for address, args in show.patch])
        if on_import is not None:  # the parts other rooms own (projector outputs)
            on_import(show)
        saver.replace(show)
        return {"type": "show/imported", "models": sorted(show.models)}

    async def export_show(connection: Client, message: dict[str, Any]) -> dict[str, Any]:
        return {"type": "show", "show": saver.show.to_json()}

    async def export_preset(connection: Client, message: dict[str, Any]) -> dict[str, Any]:
        try:
            name = check_name(message.get("name"))
        except PresetError as exc:
            raise ValueError(str(exc)) from exc
        preset = saver.show.presets.get(name)
        if preset is None:
            raise ValueError(f"no preset called {name!r}")
        return {"type": "preset", "name": name, "preset": preset}

    async def import_preset(connection: Client, message: dict[str, Any]) -> dict[str, Any]:
        try:
            name = check_name(message.get("name"))
            preset = check_preset(message.get("preset"), f"imported preset {name}")
        except PresetError as exc:
            raise ValueError(str(exc)) from exc
        engine.import_preset(name, preset)
        return {"type": "preset/imported", "name": name}

    app.add_message("preset/export", export_preset, role=Role.PERFORMER)
    app.add_message("preset/import", import_preset, role=Role.PERFORMER)
    app.add_message("show/import", import_show, role=Role.ADMIN)
    app.add_message("show/export", export_show, role=Role.ADMIN)
