"""Every change ganvj makes to aiortc's own behaviour, in one place, checked against its version.

Two patches, each for something upstream (aiortc 1.16) lacks:

- **Playout delay.** aiortc does not know the `playout-delay` RTP header
  extension, so a browser adds its own render delay to every frame (below).
- **Keyframe requests with a shared encoder.** aiortc's `RTCRtpSender` answers
  a viewer's picture-loss (PLI) or full-intra (FIR) request by flagging the
  encoder it owns (`_send_keyframe`); it has no hook for a track whose packets
  are already encoded, as ours are (one encoder for every viewer). So
  `route_keyframe_requests` points that private method at our encoder.

Both reach into aiortc's private names (`HeaderExtensionsMap.configure/set`,
`RTCRtpSender._send_keyframe`), so they are verified against the versions in
`VERIFIED`: `check_aiortc()` refuses to patch when a name we patch is gone,
and logs a clear warning once for any other version (check the two patches,
then add it). The rest of our workarounds touch only SDP text, never aiortc's
classes: see `server.media.rtc`.

**Playout delay.** A WebRTC receiver smooths playback with a render delay of its own on top of
the jitter buffer. Chromium honours the sender's
`http://www.webrtc.org/experiments/rtp-hdrext/playout-delay` extension
(min and max delay, 12 bits each, in 10 ms units): min = max = 0 asks it to
render every frame as soon as it is decoded, which is what a live instrument
wants. aiortc 1.16 does not know the extension; `enable_zero_playout_delay()`
adds it to the video extensions aiortc negotiates (so an answer accepts it
when the browser offers it) and to every RTP packet the video senders write.
Process-wide and idempotent; `disable_zero_playout_delay()` undoes it (the
latency benchmark measures both ways).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import aiortc
from aiortc import RTCRtpSender, codecs, rtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

logger = logging.getLogger(__name__)

VERIFIED = ("1.16",)  # aiortc major.minor versions these patches were read against and tested

URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
ZERO = b"\x00\x00\x00"  # min 0, max 0 (12 bits each)
_ID = "_ganvj_playout_delay_id"

_configure = rtp.HeaderExtensionsMap.configure
_set = rtp.HeaderExtensionsMap.set


def _configure_with_playout(self: Any, parameters: Any) -> None:
    _configure(self, parameters)
    found = [ext.id for ext in parameters.headerExtensions if ext.uri == URI]
    setattr(self, _ID, found[0] if found else None)


def _set_with_playout(self: Any, values: Any) -> tuple[int, bytes]:
    profile, data = _set(self, values)
    ext_id = getattr(self, _ID, None)
    if not ext_id:
        return profile, data
    elements = list(rtp.unpack_header_extensions(profile, data)) if data else []
    elements.append((ext_id, ZERO))
    return rtp.pack_header_extensions(elements)


class AiortcMismatch(RuntimeError):
    """The installed aiortc lacks a private name a patch needs; the message names it."""


@functools.cache
def check_aiortc() -> None:
    """Refuse an aiortc without the names we patch; warn once for one not in VERIFIED."""
    missing = [
        name
        for owner, name in (
            (rtp.HeaderExtensionsMap, "configure"),
            (rtp.HeaderExtensionsMap, "set"),
            (RTCRtpSender, "_send_keyframe"),
        )
        if not callable(getattr(owner, name, None))
    ]
    version = getattr(aiortc, "__version__", "unknown")
    if missing:
        raise AiortcMismatch(
            f"aiortc {version} has no {', '.join(missing)}: ganvj's patches "
            f"(server/media/aiortc_patches.py) were verified with aiortc {', '.join(VERIFIED)}.*; "
            "install a verified version"
        )
    if ".".join(version.split(".")[:2]) not in VERIFIED:
        logger.warning(
            "aiortc %s is not a version ganvj's patches were verified with (%s.*): playout-delay "
            "and keyframe requests may misbehave; see server/media/aiortc_patches.py",
            version,
            ", ".join(VERIFIED),
        )


def route_keyframe_requests(sender: RTCRtpSender, request_keyframe: Callable[[], None]) -> None:
    """Send `sender`'s keyframe requests (PLI, FIR) to our shared encoder, not aiortc's own."""
    check_aiortc()
    sender._send_keyframe = request_keyframe  # type: ignore[method-assign]


def enable_zero_playout_delay() -> None:
    """Negotiate and send playout-delay min = max = 0 on video (idempotent)."""
    check_aiortc()
    video = codecs.HEADER_EXTENSIONS["video"]
    if not any(ext.uri == URI for ext in video):
        video.append(RTCRtpHeaderExtensionParameters(id=6, uri=URI))
    rtp.HeaderExtensionsMap.configure = _configure_with_playout  # type: ignore[method-assign]
    rtp.HeaderExtensionsMap.set = _set_with_playout  # type: ignore[method-assign]


def disable_zero_playout_delay() -> None:
    """aiortc's own behaviour again."""
    check_aiortc()
    video = codecs.HEADER_EXTENSIONS["video"]
    video[:] = [ext for ext in video if ext.uri != URI]
    rtp.HeaderExtensionsMap.configure = _configure  # type: ignore[method-assign]
    rtp.HeaderExtensionsMap.set = _set  # type: ignore[method-assign]
