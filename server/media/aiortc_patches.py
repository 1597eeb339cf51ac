"""Ask the browser to show each frame at once: the `playout-delay` RTP header extension.

A WebRTC receiver smooths playback with a render delay of its own on top of
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

from typing import Any

from aiortc import codecs, rtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

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


def enable_zero_playout_delay() -> None:
    """Negotiate and send playout-delay min = max = 0 on video (idempotent)."""
    video = codecs.HEADER_EXTENSIONS["video"]
    if not any(ext.uri == URI for ext in video):
        video.append(RTCRtpHeaderExtensionParameters(id=6, uri=URI))
    rtp.HeaderExtensionsMap.configure = _configure_with_playout  # type: ignore[method-assign]
    rtp.HeaderExtensionsMap.set = _set_with_playout  # type: ignore[method-assign]


def disable_zero_playout_delay() -> None:
    """aiortc's own behaviour again."""
    video = codecs.HEADER_EXTENSIONS["video"]
    video[:] = [ext for ext in video if ext.uri != URI]
    rtp.HeaderExtensionsMap.configure = _configure  # type: ignore[method-assign]
    rtp.HeaderExtensionsMap.set = _set  # type: ignore[method-assign]
