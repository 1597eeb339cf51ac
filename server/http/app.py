"""One port for the browser: static pages, /api/*, the /ws websocket, and any route a module adds.

HTTP runs on aiohttp. Chosen over Starlette on uvicorn because:
- it is made to be embedded in a program that already owns its event loop:
  `AppRunner` and `TCPSite` start and stop as plain awaitables, so the web
  server is one more layer of the lifecycle stack; uvicorn's `Server` wants to
  own signals and start-up, and its in-process start and stop are not public API;
- one package gives routing, request bodies (WHIP and WHEP POST an SDP offer),
  the websocket with a size limit and heartbeat, and TLS on the same port,
  where Starlette + uvicorn + websockets are three layers with an ASGI message
  queue between the socket and the handler;
- aiortc's own examples signal over aiohttp, so WebRTC glue reads the same;
- it runs on whatever loop is running, uvloop included.
The websocket protocol on /ws is unchanged: the same JSON messages over RFC 6455.

The websocket carries WebRTC signalling (one SDP offer in, one answer out: no
trickle ICE; `server.media.rtc` answers it and owns the peers, for WHIP/WHEP
too), commands and state feedback. Every message is checked at the
edge; a bad one gets an error reply or a closed connection and touches
nothing else. Other modules add routes with `App.add_route` (any method, a
request handler) or `App.add_json` (a GET that returns JSON), and websocket
message types with `App.add_message`, all before the server starts.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import mimetypes
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from server.addresses import is_loopback
from server.config import Config
from server.control import ControlHub
from server.engine import Engine
from server.http.auth import Access, AccessError, Role, message_role
from server.http.client import Client, ClientGone
from server.http.hosts import ServerNames
from server.media.rtc import OfferError, Peer, PeerConnections
from server.media.stream import FrameTrack, PacketHub, StreamEncoder, ViewerTrack
from server.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
# Limits
MAX_BODY_BYTES = 1024 * 1024  # an HTTP request body (an SDP offer, an imported show)
HEARTBEAT_S = 20.0  # ping a quiet websocket this often; no pong within half of it closes it
CLOSE_TIMEOUT_S = 2.0
MAX_PATH_CHARS = 1024  # a static page's path; longer is not one of ours
# What a viewer's /api/status shows: numbers for the viewer page, no paths or host names.
VIEWER_STATUS = frozenset(
    {
        "rendered_fps",
        "frame_ms",
        "frames",
        "model",
        "arch",
        "resolution",
        "canvas",
        "fill",
        "encoder",
        "encoder_threads",
        "encode_ms",
        "encodes",
        "device",
        "half",
        "stalled",
        "tempo_bpm",
        "sent_fps",
        "sent_fps_per_viewer",
        "encoded_fps",
        "keyframes",
        "viewers",
        "codec",
        "bitrate_kbps",
        "shared_encoder",
        "websockets",
        "uptime_s",
    }
)

ROLE = web.RequestKey("role", Role)  # every request's role, set at the edge
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MessageHandler = Callable[[Client, dict[str, Any]], Awaitable[dict[str, Any]]]


def request_token(request: web.Request) -> str | None:
    """The token a request brings: `Authorization: Bearer ...`, else `?t=...`."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.query.get("t") or None


def needs(role: Role, what: str) -> str:
    """The refusal for a client whose role is too low."""
    hint = (
        "ask the performer for the control link"
        if role == Role.PERFORMER
        else "use the admin token"
    )
    return f"{what} needs the {role} role: {hint}"


def describe_message(message: dict[str, Any]) -> str:
    """A websocket message named for an error reply."""
    kind = message.get("type")
    if kind == "offer":
        role = message.get("role")
        return f"a {role} offer" if role in ("camera", "audio") else "an offer"
    if kind is None:
        address = message.get("address")
        return f"{address}" if isinstance(address, str) else "a control message"
    return f"{kind!r}"


class ProtocolError(ValueError):
    """A websocket message that breaks the protocol; the reply says why."""


def local_socket(request: web.Request) -> tuple[str | None, int]:
    """The address and port the client reached (our end of its connection)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return None, 0


def http_response(status: http.HTTPStatus, body: bytes, content_type: str) -> web.Response:
    """A complete HTTP response with the right Content-Type, never cached."""
    return web.Response(
        status=status.value,
        body=body,
        headers={"Content-Type": content_type, "Cache-Control": "no-store"},
    )


def json_response(data: Any, status: http.HTTPStatus = http.HTTPStatus.OK) -> web.Response:
    """A JSON HTTP response."""
    return http_response(status, json.dumps(data).encode(), "application/json")


def error_response(status: http.HTTPStatus, reason: str) -> web.Response:
    """A JSON error: {"error": reason}."""
    return json_response({"error": reason}, status)


class App:
    """The server's network face: pages, status, signalling; owns the viewers."""

    def __init__(
        self,
        *,
        config: Config,
        engine: Engine,
        encoder: StreamEncoder | None,
        hub: PacketHub | None,
        control: ControlHub,
        access: Access,
        on_performer: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._on_performer = on_performer  # a performer's websocket opened from this address
        self.access = access
        self.engine = engine
        self.encoder = encoder
        self.hub = hub
        limits = config.limits
        self.rtc = PeerConnections(
            ice_servers=config.server.ice_servers,
            codec=config.stream.codec,
            max_viewers=config.server.max_viewers,
            camera=engine.camera_hub,
            viewer_track=self._viewer_track,
            viewers_per_client=limits.viewers_per_client,
            connect_s=limits.peer_connect_s,
        )
        self.names = ServerNames(hostnames=config.server.hostnames)
        # Viewers' offers, over /ws and WHEP: from everyone, and from each address.
        self._offers_all = TokenBucket(rate=limits.offers_per_min / 60, burst=limits.offers_per_min)
        self._offers_each = TokenBucket(
            rate=limits.offers_per_min_per_client / 60, burst=limits.offers_per_min_per_client
        )
        self.connections: set[Client] = set()
        self.bad_messages = 0
        self.started = time.monotonic()
        self.control = control
        self.osc_stats: Callable[[], dict[str, int]] | None = None
        self.status_extras: dict[str, Callable[[], object]] = {}  # more /api/status sections
        # Where a browser's audio (the /audio page) goes: samples and their rate.
        self.audio_in: Callable[[Any, int], None] | None = None
        self.web = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._edge])
        self.message_types: dict[str, MessageHandler] = {}
        self.message_roles: dict[str, Role] = {}
        self.refused = 0  # websocket messages refused for their role
        self.throttled = 0  # websocket messages over a client's rate
        self._warned_clear: set[str] = set()
        self.add_route("GET", "/api/status", self._status)
        self.add_json("/api/role", None)
        self.add_route("GET", "/ws", self._websocket)

    # -- routes -------------------------------------------------------------

    def add_route(
        self, method: str, path: str, handler: Handler, *, role: Role = Role.VIEWER
    ) -> None:
        """Serve `method path` to clients with at least `role` (before the server starts).

        `handler` is an aiohttp request handler; `request[ROLE]` holds the caller's role.
        """
        if role > Role.VIEWER:

            async def guarded(request: web.Request) -> web.StreamResponse:
                if request[ROLE] < role:
                    return error_response(http.HTTPStatus.FORBIDDEN, needs(role, path))
                return await handler(request)

            self.web.router.add_route(method, path, guarded)
        else:
            self.web.router.add_route(method, path, handler)

    def add_json(
        self, path: str, produce: Callable[[], Any] | None, *, role: Role = Role.VIEWER
    ) -> None:
        """Serve GET `path` with the JSON of what `produce()` returns (None: the caller's role)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            if produce is None:
                return json_response({"role": str(request[ROLE])})
            return json_response(produce())

        self.add_route("GET", path, handler, role=role)

    def add_message(
        self, kind: str, handler: MessageHandler, *, role: Role = Role.PERFORMER
    ) -> None:
        """Answer websocket messages of `{"type": kind}`; a ValueError becomes an error reply."""
        self.message_types[kind] = handler
        self.message_roles[kind] = role

    @web.middleware
    async def _edge(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every request's Host, Origin and role, decided once, before any handler runs."""
        remote = request.remote or ""
        local = local_socket(request)
        if not self.names.host_ok(
            request.headers.get("Host"), port=local[1], local_address=local[0]
        ):
            # DNS rebinding: a page whose name now points here; refused before any role.
            self.access.refused += 1
            logger.info(
                "refused %s %s from %s: Host %r",
                request.method,
                request.path,
                remote,
                request.headers.get("Host"),
            )
            return error_response(
                http.HTTPStatus.MISDIRECTED_REQUEST,
                "this Host is not a name of this server: add it to server.hostnames in config.toml",
            )
        token = request_token(request)
        try:
            if request.path == "/ws" or request.method not in ("GET", "HEAD", "OPTIONS"):
                origin = request.headers.get("Origin")
                ours = origin is not None and self.names.origin_ok(
                    origin, port=local[1], local_address=local[0]
                )
                self.access.check_origin(origin, ours=ours)
            role = self.access.role(remote=remote, token=token)
        except AccessError as exc:
            self.access.refused += 1
            logger.info("refused %s %s from %s: %s", request.method, request.path, remote, exc)
            return error_response(http.HTTPStatus.FORBIDDEN, str(exc))
        request[ROLE] = role
        if token and not request.secure and not is_loopback(remote):
            self._warn_clear(remote)
        return await handler(request)

    def _warn_clear(self, remote: str) -> None:
        if remote not in self._warned_clear and len(self._warned_clear) < 1024:
            self._warned_clear.add(remote)
            logger.warning(
                "a token from %s travels in the clear: set server.tls = true on a shared network",
                remote,
            )

    def finish_routes(self) -> web.Application:
        """The aiohttp application with the static pages behind every other route."""
        self.add_route("GET", "/{path:.*}", self._static)
        return self.web

    async def _static(self, request: web.Request) -> web.StreamResponse:
        not_found = http_response(http.HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        path = request.path
        # NUL, undecodable bytes (surrogates) or a name no page has: not a file of ours,
        # and not something to hand the file system (it raises on them).
        if len(path) > MAX_PATH_CHARS or "\x00" in path or not path.isprintable():
            return not_found
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            return not_found
        name = {"/": "index.html", "/favicon.ico": "favicon.svg"}.get(path, path.lstrip("/"))
        if "/" not in name and "." not in name:
            name += ".html"  # /control -> control.html
        try:
            target = (WEB_ROOT / name).resolve()
            # Only files inside web/: no ../ escapes, no directories.
            if WEB_ROOT not in target.parents or not target.is_file():
                return not_found
        except (OSError, ValueError):  # a name too long for the file system, say
            return not_found
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".js":
            content_type = "text/javascript"
        return http_response(http.HTTPStatus.OK, target.read_bytes(), content_type)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        status = self.status()
        if request[ROLE] < Role.PERFORMER:  # the audience: no paths, host names or errors
            status = {k: v for k, v in status.items() if k in VIEWER_STATUS}
        return json_response(status)

    def status(self) -> dict[str, Any]:
        """The numbers /api/status serves."""
        stats = self.engine.stats()
        sent = [round(p.track.sent.rate(), 2) for p in self.rtc.viewers if p.track is not None]
        stats.update(
            {
                "sent_fps": round(sum(sent) / len(sent), 2) if sent else 0.0,
                "sent_fps_per_viewer": sent,
                "encoded_fps": round(self.encoder.encoded_rate.rate(), 2) if self.encoder else None,
                "encoded_keyframes": self.encoder.keyframes if self.encoder else None,
                "encoder": self.encoder.encoder_name if self.encoder else None,
                "encoder_threads": self.encoder.encoder_threads if self.encoder else None,
                "encode_ms": round(self.encoder.encode_ms, 2) if self.encoder else None,
                "encodes": self.encoder.encodes if self.encoder else None,
                "viewers": len(self.rtc.viewers),
                "codec": self.config.stream.codec,
                "bitrate_kbps": self.config.stream.bitrate_kbps,
                "shared_encoder": self.encoder is not None,
                "websockets": len(self.connections),
                "unconnected_peers_closed": self.rtc.unconnected_closed,
                "bad_messages": self.bad_messages,
                "refused": {
                    "requests": self.access.refused,
                    "messages": self.refused,
                    "throttled": self.throttled,
                },
                "rejected_commands": self.control.rejected,
                "osc": self.osc_stats() if self.osc_stats else None,
                "input": self.engine.inputs.status(),
                "uptime_s": round(time.monotonic() - self.started, 1),
            }
        )
        stats.update({name: section() for name, section in self.status_extras.items()})
        return stats

    # -- websocket ----------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        """One /ws connection: signalling and control until it closes."""
        full = self._connections_full(request.remote or "", request[ROLE])
        if full is not None:
            return error_response(http.HTTPStatus.SERVICE_UNAVAILABLE, full)
        ws = web.WebSocketResponse(
            # Limits
            max_msg_size=self.config.limits.ws_max_message_bytes,
            heartbeat=HEARTBEAT_S,
            timeout=CLOSE_TIMEOUT_S,
        )
        if not ws.can_prepare(request).ok:
            return error_response(
                http.HTTPStatus.UPGRADE_REQUIRED, "/ws is a websocket: connect with ws:// or wss://"
            )
        await ws.prepare(request)
        limits = self.config.limits
        client = Client(
            ws,
            remote=request.remote or "",
            role=request[ROLE],
            messages_per_s=limits.ws_messages_per_s,
            offers_per_min=limits.ws_offers_per_min,
        )
        await self.handle(client)
        return ws

    def _connections_full(self, remote: str, role: Role) -> str | None:
        """Why one more websocket is refused, or None.

        The role is known at the handshake, so players (performer, admin) and
        viewers are counted apart: a house full of viewers never locks the
        performer out. One address may hold only so many viewer connections.
        """
        limits = self.config.limits
        player = role >= Role.PERFORMER
        same = [c for c in self.connections if (c.role >= Role.PERFORMER) == player]
        if len(same) >= limits.ws_max_connections:
            return "too many websocket connections"
        if not player and sum(c.remote == remote for c in same) >= (
            limits.ws_connections_per_client
        ):
            return (
                f"too many websocket connections from this address "
                f"(at most {limits.ws_connections_per_client})"
            )
        return None

    def admit_offer(self, remote: str, role: Role) -> str | None:
        """Why a viewer's offer (over /ws or WHEP) is refused for the rate, or None.

        Players' offers are not counted: the audience cannot use up their rate.
        """
        if role >= Role.PERFORMER:
            return None
        limits = self.config.limits
        if not self._offers_each.take(remote):
            each = limits.offers_per_min_per_client
            return f"too many offers from this address: at most {each} a minute"
        if not self._offers_all.take():
            return f"too many offers: at most {limits.offers_per_min} a minute from all viewers"
        return None

    async def handle(self, connection: Client) -> None:
        """Serve one accepted websocket until it closes."""
        self.connections.add(connection)
        if connection.role >= Role.PERFORMER:  # feedback is for those who play
            self.control.join(connection)
            if self._on_performer is not None:
                self._on_performer(connection.remote)
        own: set[Peer] = set()
        try:
            async for frame in connection.ws:
                if frame.type == WSMsgType.ERROR:  # e.g. over the size limit: closed (1009)
                    break
                try:
                    if not connection.messages.take():
                        await self._throttled(
                            connection, "messages", self.config.limits.ws_messages_per_s, "a second"
                        )
                        continue
                    message = self._decode(frame.data if frame.type == WSMsgType.TEXT else b"")
                    await self._admit(connection, message)
                    await self._dispatch(connection, message, own)
                except ProtocolError as exc:
                    self.bad_messages += 1
                    await connection.send(json.dumps({"type": "error", "error": str(exc)}))
        except ClientGone:
            pass
        finally:
            self.connections.discard(connection)
            self.control.leave(connection)
            # A viewer's peer lives as long as its websocket; the page
            # reconnects both together.
            await asyncio.gather(*(self.rtc.close_peer(p) for p in own))

    async def _admit(self, connection: Client, message: dict[str, Any]) -> None:
        """Refuse a message its sender's role does not allow, or an offer over the rate."""
        wanted = message_role(message, self.message_roles)
        if connection.role < wanted:
            self.refused += 1
            raise ProtocolError(needs(wanted, describe_message(message)))
        if message.get("type") == "offer":
            if not connection.offers.take():
                self.throttled += 1
                raise ProtocolError(
                    f"too many offers: at most {self.config.limits.ws_offers_per_min} a minute"
                )
            refused = self.admit_offer(connection.remote, connection.role)
            if refused is not None:
                self.throttled += 1
                raise ProtocolError(refused)

    async def _throttled(self, connection: Client, what: str, rate: int, per: str) -> None:
        """Count a message over the rate; say so at most once a second (no reply flood)."""
        self.throttled += 1
        if connection.may_warn_throttled():
            await connection.send(
                json.dumps(
                    {
                        "type": "error",
                        "error": f"too many {what}: at most {rate} {per}; "
                        "the rest are dropped, slow down",
                    }
                )
            )

    def _decode(self, raw: str | bytes) -> dict[str, Any]:
        if isinstance(raw, bytes):
            raise ProtocolError("binary messages are not accepted: send JSON text")
        try:
            message = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"not JSON: {exc.msg} at position {exc.pos}") from exc
        except RecursionError as exc:  # "[[[[...": the parser's stack, not ours, gives out
            raise ProtocolError("not JSON this server takes: nested too deeply") from exc
        if not isinstance(message, dict):
            raise ProtocolError("a message must be a JSON object")
        return message

    async def _dispatch(self, connection: Client, message: dict[str, Any], own: set[Peer]) -> None:
        kind = message.get("type")
        if kind == "offer":
            answer = await self._answer(connection, message, own)
            await connection.send(json.dumps({"type": "answer", "sdp": answer}))
        elif kind == "ping":
            await connection.send(json.dumps({"type": "pong", "t": message.get("t")}))
        elif kind is None:
            await self.control.handle(connection, message)
        elif isinstance(kind, str) and kind in self.message_types:
            try:
                reply = await self.message_types[kind](connection, message)
            except ValueError as exc:
                raise ProtocolError(str(exc)) from exc
            await connection.send(json.dumps(reply))
        else:
            known = ", ".join(["offer", "ping", *self.message_types])
            raise ProtocolError(
                f"unknown message type {kind!r}: expected one of {known}, "
                "or a control message with 'address' and 'args'"
            )

    async def _answer(self, connection: Client, message: dict[str, Any], own: set[Peer]) -> str:
        """Answer a websocket's offer: a viewer's, or a camera's or audio sender's by its role."""
        sdp = message.get("sdp")
        role = message.get("role")
        try:
            if role == "camera":
                return await self.rtc.answer_camera(sdp, own)
            if role == "audio":
                return await self.rtc.answer_audio(sdp, own, self.audio_in)
            return await self.rtc.answer_viewer(
                sdp,
                own,
                client=connection.remote,
                privileged=connection.role >= Role.PERFORMER,
            )
        except OfferError as exc:
            raise ProtocolError(str(exc)) from exc

    def _viewer_track(self) -> ViewerTrack | FrameTrack:
        """A new viewer's track: packets of the shared encoder, else frames to encode for it."""
        if self.hub is not None:
            return self.hub.add_viewer()
        return FrameTrack(frames=self.engine.frames)

    async def close(self) -> None:
        """Close every peer and websocket (shutdown)."""
        await self.rtc.close()
        await asyncio.gather(*(c.close(1001, "server shutting down") for c in self.connections))
