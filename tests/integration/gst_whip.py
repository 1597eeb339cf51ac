"""A WHIP publisher on GStreamer's webrtcbin, run by Debian's /usr/bin/python3.

Debian 12's simple-whip-client aborts at start ("libsoup2 symbols detected":
it links libsoup 2 while libnice, under webrtcbin, pulls in libsoup 3), so the
WHIP test publishes with this instead: the same GStreamer WebRTC stack, and
the WHIP exchange (RFC 9725) done here with the standard library: POST the
offer as application/sdp once ICE gathering completes (no trickle), apply the
201's answer, and DELETE the Location on SIGINT or SIGTERM. Prints one JSON
line per step; exits 1 on a refused offer or a pipeline error.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import urllib.error
import urllib.request
from urllib.parse import urljoin

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

PIPELINE = (
    "videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=160,height=120,framerate=15/1"
    " ! videoconvert ! vp8enc deadline=1 ! rtpvp8pay pt=96"
    " ! application/x-rtp,media=video,encoding-name=VP8,payload=96"
    " ! webrtcbin name=send bundle-policy=max-bundle"
)


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class Publisher:
    """webrtcbin sending a test pattern, signalled over WHIP."""

    def __init__(self, url: str, pattern: str) -> None:
        self.url = url
        self.location: str | None = None
        self.failed = False
        self.loop = GLib.MainLoop()
        self.pipe = Gst.parse_launch(PIPELINE.format(pattern=pattern))
        self.webrtc = self.pipe.get_by_name("send")
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)

    def on_negotiation_needed(self, element: Gst.Element) -> None:
        def on_offer(promise: Gst.Promise, _: object) -> None:
            reply = promise.get_reply()
            element.emit("set-local-description", reply.get_value("offer"), Gst.Promise.new())

        element.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer, None))

    def on_gathering(self, element: Gst.Element, _: object) -> None:
        state = element.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and self.location is None:
            GLib.idle_add(self.publish, element.get_property("local-description").sdp.as_text())

    def publish(self, offer: str) -> bool:
        request = urllib.request.Request(
            self.url, data=offer.encode(), headers={"Content-Type": "application/sdp"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                self.location = urljoin(self.url, response.headers["Location"])
                answer = response.read().decode()
        except urllib.error.HTTPError as exc:
            emit(refused=exc.code, reason=exc.read().decode())
            self.failed = True
            self.loop.quit()
            return False
        _, sdp = GstSdp.SDPMessage.new_from_text(answer)
        description = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        self.webrtc.emit("set-remote-description", description, Gst.Promise.new())
        emit(published=self.location)
        return False

    def hang_up(self) -> bool:
        if self.location is not None:
            request = urllib.request.Request(self.location, method="DELETE")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    emit(deleted=response.status)
            except (urllib.error.URLError, OSError) as exc:
                emit(delete_failed=str(exc))
        self.loop.quit()
        return False

    def on_error(self, _: Gst.Bus, message: Gst.Message) -> None:
        error, debug = message.parse_error()
        print(f"gstreamer error: {error.message} ({debug})", file=sys.stderr, flush=True)
        self.failed = True
        self.loop.quit()

    def run(self, timeout: float) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self.hang_up)
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add(int(timeout * 1000), self.hang_up)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return 1 if self.failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="the /whip endpoint")
    parser.add_argument("--pattern", default="red", help="videotestsrc pattern")
    parser.add_argument("--timeout", type=float, default=60.0, help="hang up after this long")
    args = parser.parse_args()
    Gst.init(None)
    return Publisher(args.url, args.pattern).run(args.timeout)


if __name__ == "__main__":
    sys.exit(main())
