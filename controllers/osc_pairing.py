"""Hosts a performer has paired for OSC, kept in a small JSON file in state_dir.

The tablet that opens /control with the performer's link is the one running
TouchOSC, so its address is paired; `/osc/allow` and `/osc/deny` pair and
unpair by hand. The file is written atomically (a new file renamed over the
old); a file that cannot be read is logged and the list starts empty.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

PAIRINGS_FILE = "osc_paired.json"
# Limits
MAX_PAIRED = 64  # paired hosts; pairing one more unpairs the oldest


def normalise_host(host: str) -> str:
    """An address as one canonical string ("::ffff:10.0.0.2" -> "10.0.0.2"); ValueError if none."""
    address = ipaddress.ip_address(host.strip().split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


class Pairings:
    """The paired hosts, oldest first; `path` None keeps them in memory only."""

    def __init__(self, path: Path | None = None, *, max_hosts: int = MAX_PAIRED) -> None:
        self._path = path
        self._max = max_hosts
        self._hosts: dict[str, None] = {}
        if path is not None:
            self._hosts = dict.fromkeys(self._load(path)[-max_hosts:])

    @property
    def hosts(self) -> tuple[str, ...]:
        """The paired hosts, oldest first."""
        return tuple(self._hosts)

    def __contains__(self, host: object) -> bool:
        return host in self._hosts

    def pair(self, host: str) -> bool:
        """Pair `host` (ValueError if it is not an address); True if it was not paired."""
        key = normalise_host(host)
        if key in self._hosts:
            return False
        if len(self._hosts) >= self._max:
            oldest = next(iter(self._hosts))
            del self._hosts[oldest]
            logger.info("OSC: unpaired %s, at most %d paired hosts", oldest, self._max)
        self._hosts[key] = None
        self._save()
        return True

    def unpair(self, host: str) -> bool:
        """Unpair `host`; True if it was paired."""
        try:
            key = normalise_host(host)
        except ValueError:
            return False
        if self._hosts.pop(key, False) is False:
            return False
        self._save()
        return True

    @staticmethod
    def _load(path: Path) -> list[str]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            logger.error("OSC pairings: cannot read %s (%s): starting with none paired", path, exc)
            return []
        hosts = data.get("hosts") if isinstance(data, dict) else None
        if not isinstance(hosts, list):
            logger.error(
                'OSC pairings: %s holds no {"hosts": [...]} list: starting with none paired', path
            )
            return []
        out: list[str] = []
        for host in hosts:
            try:
                out.append(normalise_host(host))
            except (ValueError, AttributeError):
                logger.error("OSC pairings: %s: %r is not an address: left out", path, host)
        return list(dict.fromkeys(out))

    def _save(self) -> None:
        if self._path is None:
            return
        text = json.dumps({"hosts": list(self._hosts)}, indent=1) + "\n"
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self._path.name}.", dir=self._path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(tmp, self._path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            # The pairing holds until the server stops; only its memory is lost.
            logger.error("OSC pairings: cannot write %s: %s", self._path, exc)
