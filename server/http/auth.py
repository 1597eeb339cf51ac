"""Who may do what: roles, tokens, trusted addresses and the Origin check.

A venue network is shared with the audience. A viewer only receives video;
a performer sends commands, offers a camera and gets state feedback; an admin
also imports and exports shows and opens sources by path. The role is decided
once, at the edge (the HTTP request or the /ws handshake), from a token
(`Authorization: Bearer ...` or `?t=...`) or a trusted source address; the
engine never sees it. Pure apart from `load_tokens`, which keeps the tokens in
state_dir.
"""

from __future__ import annotations

import enum
import hmac
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from server.addresses import LOOPBACK, parse_networks, peer_address
from server.commands import admin_only, opens_by_path

logger = logging.getLogger(__name__)

TOKEN_FILE = "tokens.json"
# Commands that open files, devices or URLs on the server's machine by name.
ADMIN_ADDRESSES = admin_only()


class Role(enum.IntEnum):
    """What a client may do; each role may do everything of the ones below it."""

    VIEWER = 0
    PERFORMER = 1
    ADMIN = 2

    def __str__(self) -> str:
        return self.name.lower()


class AccessError(Exception):
    """A request refused at the edge; the message says why and what to do."""


@dataclass(frozen=True)
class Tokens:
    """The secrets that give a client the performer or admin role."""

    performer: str
    admin: str


def load_tokens(folder: Path, *, performer: str = "", admin: str = "") -> Tokens:
    """Configured tokens, else the ones kept in `folder`, else new ones (kept, 0600)."""
    path = folder / TOKEN_FILE
    kept: dict[str, str] = {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            kept = {k: v for k, v in data.items() if isinstance(v, str) and len(v) >= 16}
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        logger.error("cannot read %s (%s): making new tokens", path, exc)
    wanted = {
        "performer": kept.get("performer") or secrets.token_urlsafe(18),
        "admin": kept.get("admin") or secrets.token_urlsafe(18),
    }
    if wanted != kept:
        _write_private(path, json.dumps(wanted, indent=1) + "\n")
    return Tokens(performer=performer or wanted["performer"], admin=admin or wanted["admin"])


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)  # the file holds secrets
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]`, lower case, as browsers send it."""
    return origin.strip().rstrip("/").lower()


class Access:
    """Decides a client's role and whether its Origin may connect."""

    def __init__(
        self,
        *,
        tokens: Tokens,
        trust_loopback: bool = True,
        trusted: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
    ) -> None:
        self.tokens = tokens
        networks = parse_networks(trusted)
        self._trusted = (*LOOPBACK, *networks) if trust_loopback else networks
        self._origins = frozenset(normalise_origin(o) for o in allowed_origins)
        self.refused = 0  # requests refused at the edge, for /api/status

    def trusts(self, remote: str) -> bool:
        """Whether this source address gets every role without a token."""
        address = peer_address(remote)
        return address is not None and any(address in net for net in self._trusted)

    def role(self, *, remote: str, token: str | None) -> Role:
        """The role of a client; AccessError for a token that is not one of ours."""
        trusted = self.trusts(remote)
        # A laptop on its own is as easy as without roles.
        base = Role.ADMIN if trusted else Role.VIEWER
        if not token:
            return base
        if hmac.compare_digest(token.encode(), self.tokens.admin.encode()):
            return Role.ADMIN
        if hmac.compare_digest(token.encode(), self.tokens.performer.encode()):
            return max(Role.PERFORMER, base)
        if trusted:
            return base  # a stale link on a trusted machine still works
        raise AccessError("this token is not valid here: ask the performer for the link")

    def check_origin(self, origin: str | None, *, ours: bool) -> None:
        """Refuse a browser page from another origin (cross-site websocket hijacking).

        `ours`: the Origin names this server (`server.http.hosts`), never judged
        from the client's own Host, which a DNS-rebinding page sets to match.
        No Origin: not a browser; it is let in and gets the role its token gives.
        """
        if origin is None or ours:
            return
        if normalise_origin(origin) in self._origins:
            return
        raise AccessError(
            f"origin {origin!r} may not use this server: "
            "add it to server.allowed_origins in config.toml"
        )


def message_role(message: Mapping[str, object], roles: Mapping[str, Role]) -> Role:
    """The least role that may send this /ws message (`roles`: more message types)."""
    kind = message.get("type")
    if kind == "offer":
        # A camera or a microphone steers the show; only a viewer's offer is for anyone.
        return Role.PERFORMER if message.get("role") in ("camera", "audio") else Role.VIEWER
    if kind is None:  # a control message or a bundle of them
        items = message.get("bundle")
        found = items if isinstance(items, list) else [message]
        addresses = {i.get("address") for i in found if isinstance(i, Mapping)}
        by_path = False
        for item in found:
            args = item.get("args") if isinstance(item, Mapping) else None
            if isinstance(item, Mapping) and isinstance(args, list):
                by_path = by_path or opens_by_path(str(item.get("address")), args)
        return Role.ADMIN if addresses & ADMIN_ADDRESSES or by_path else Role.PERFORMER
    if isinstance(kind, str) and kind in roles:
        return roles[kind]
    return Role.VIEWER  # ping, and unknown types that get their own error
