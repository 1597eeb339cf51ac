"""WHIP in and WHEP out: the standard HTTP signalling for one WebRTC stream each way.

`POST /whip` (RFC 9725) takes an SDP offer from a publisher (OBS 30+,
GStreamer's whip-client, a browser) and makes its video the reaction source,
exactly as the /camera page does. `POST /whep` takes a viewer's offer and
feeds it from the shared encoder, as the / page is fed. Each answers 201 with
the SDP answer and a `Location` naming the session; `DELETE` on it hangs up.
No trickle ICE: offers and answers carry every candidate, so PATCH is 405.
"""

from __future__ import annotations

import http
import logging
import secrets

from aiohttp import web

from server.http.app import ROLE, App, error_response
from server.http.auth import Role
from server.media.rtc import MAX_SDP_CHARS, OfferError, Peer

logger = logging.getLogger(__name__)

# Limits
MAX_SESSIONS = 64  # WHIP + WHEP sessions remembered for DELETE
SDP = "application/sdp"


class WhipWhep:
    """The /whip and /whep endpoints and their sessions."""

    def __init__(self, app: App) -> None:
        self.app = app
        # (kind, resource id) -> its peer while it lives: a WHEP Location
        # cannot hang up a WHIP session, nor the other way round.
        self.sessions: dict[tuple[str, str], set[Peer]] = {}
        self.published = 0

    def register(self) -> None:
        """Add the routes (before the server starts)."""
        for kind in ("whip", "whep"):
            # Publishing steers the show: the performer's; watching is anyone's.
            role = Role.PERFORMER if kind == "whip" else Role.VIEWER
            self.app.add_route("POST", f"/{kind}", self._post, role=role)
            self.app.add_route("DELETE", f"/{kind}/{{id}}", self._delete, role=role)
            self.app.add_route("PATCH", f"/{kind}/{{id}}", self._no_trickle)
            self.app.add_route("OPTIONS", f"/{kind}", self._options)

    async def _post(self, request: web.Request) -> web.StreamResponse:
        kind = request.path.strip("/")
        if request.content_type != SDP:
            return error_response(
                http.HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"send the SDP offer as Content-Type: {SDP}, not {request.content_type!r}",
            )
        sdp = await request.text()
        if len(sdp) > MAX_SDP_CHARS:
            return error_response(
                http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the SDP is longer than {MAX_SDP_CHARS} characters",
            )
        self._forget_ended()
        if len(self.sessions) >= MAX_SESSIONS:
            return error_response(
                http.HTTPStatus.SERVICE_UNAVAILABLE, f"{MAX_SESSIONS} WHIP/WHEP sessions are open"
            )
        role = request[ROLE]
        refused = self.app.admit_offer(request.remote or "", role)
        if refused is not None:
            return error_response(http.HTTPStatus.TOO_MANY_REQUESTS, refused)
        own: set[Peer] = set()
        try:
            if kind == "whip":
                answer = await self.app.rtc.answer_camera(sdp, own, source="whip")
                self.published += 1
            else:
                answer = await self.app.rtc.answer_viewer(
                    sdp, own, client=request.remote or "", privileged=role >= Role.PERFORMER
                )
        except OfferError as exc:
            return error_response(http.HTTPStatus.BAD_REQUEST, str(exc))
        resource = secrets.token_urlsafe(12)
        self.sessions[(kind, resource)] = own
        location = f"/{kind}/{resource}"
        return web.Response(
            status=http.HTTPStatus.CREATED,
            text=answer,
            content_type=SDP,
            headers={"Location": location, "Cache-Control": "no-store"},
        )

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        kind = request.path.strip("/").split("/", 1)[0]
        own = self.sessions.pop((kind, request.match_info["id"]), None)
        if own is None:
            return error_response(http.HTTPStatus.NOT_FOUND, f"no such {kind.upper()} session")
        for peer in list(own):
            await self.app.rtc.close_peer(peer)
        return web.Response(status=http.HTTPStatus.OK)

    async def _no_trickle(self, request: web.Request) -> web.StreamResponse:
        return error_response(
            http.HTTPStatus.METHOD_NOT_ALLOWED,
            "no trickle ICE: the offer must carry every candidate",
        )

    async def _options(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=http.HTTPStatus.NO_CONTENT,
            headers={"Accept-Post": SDP, "Allow": "POST, DELETE, OPTIONS"},
        )

    def _forget_ended(self) -> None:
        """Drop sessions whose peer closed by itself (network gone, publisher quit)."""
        for resource, own in list(self.sessions.items()):
            if not own:
                del self.sessions[resource]

    def status(self) -> dict[str, object]:
        """For /api/status."""
        return {"sessions": len(self.sessions), "whip_published": self.published}
