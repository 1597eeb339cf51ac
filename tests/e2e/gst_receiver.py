"""A GStreamer webrtcbin viewer with default settings, run by Debian's /usr/bin/python3.

GStreamer's Python bindings (python3-gst-1.0) are system-Python modules, so the
test runs this file as a subprocess and does the signalling for it: this side
prints one JSON line `{"offer": sdp}` once ICE gathering completes, reads one
line `{"answer": sdp}` on stdin, then prints `{"frames": n, "distinct": k,
"size": [w, h]}` lines as decoded frames arrive (k counts frames whose pixels
differ from the previous one) and exits after `--frames` frames or `--timeout`
seconds. Errors from the pipeline go to stderr and end the run with code 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

VP8_CAPS = "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class Receiver:
    """webrtcbin with one recvonly video transceiver; decoded frames go to an appsink."""

    def __init__(self, frames: int) -> None:
        self.want = frames
        self.count = 0
        self.distinct = 0
        self.last = b""
        self.size = [0, 0]
        self.loop = GLib.MainLoop()
        self.failed = False
        self.pipe = Gst.Pipeline.new("viewer")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.pipe.add(self.webrtc)
        self.webrtc.emit(
            "add-transceiver",
            GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
            Gst.Caps.from_string(VP8_CAPS),
        )
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("pad-added", self.on_pad)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)

    def on_negotiation_needed(self, element: Gst.Element) -> None:
        def on_offer(promise: Gst.Promise, _: object) -> None:
            reply = promise.get_reply()  # kept in a name: the offer lives inside it
            offer = reply.get_value("offer")
            element.emit("set-local-description", offer, Gst.Promise.new())

        element.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer, None))

    def on_gathering(self, element: Gst.Element, _: object) -> None:
        # No trickle ICE on the server: send the offer once every candidate is in it.
        if (
            element.get_property("ice-gathering-state")
            == GstWebRTC.WebRTCICEGatheringState.COMPLETE
        ):
            emit(offer=element.get_property("local-description").sdp.as_text())
            threading.Thread(target=self.read_answer, daemon=True).start()

    def read_answer(self) -> None:
        line = sys.stdin.readline()
        GLib.idle_add(self.apply_answer, json.loads(line)["answer"])

    def apply_answer(self, sdp_text: str) -> bool:
        _, sdp = GstSdp.SDPMessage.new_from_text(sdp_text)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        return False

    def on_pad(self, _: Gst.Element, pad: Gst.Pad) -> None:
        if pad.direction != Gst.PadDirection.SRC:
            return
        decode = Gst.ElementFactory.make("decodebin")
        convert = Gst.ElementFactory.make("videoconvert")
        sink = Gst.ElementFactory.make("appsink")
        sink.set_property("caps", Gst.Caps.from_string("video/x-raw,format=RGB"))
        sink.set_property("emit-signals", True)
        sink.set_property("sync", False)
        sink.connect("new-sample", self.on_sample)
        for element in (decode, convert, sink):
            self.pipe.add(element)
            element.sync_state_with_parent()
        convert.link(sink)
        decode.connect("pad-added", lambda _, p: p.link(convert.get_static_pad("sink")))
        pad.link(decode.get_static_pad("sink"))

    def on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        structure = sample.get_caps().get_structure(0)
        self.size = [structure.get_value("width"), structure.get_value("height")]
        buffer = sample.get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if ok:
            digest = hashlib.sha1(bytes(info.data)).digest()
            buffer.unmap(info)
            self.count += 1
            self.distinct += digest != self.last
            self.last = digest
            if self.count % 10 == 0 or self.count >= self.want:
                emit(frames=self.count, distinct=self.distinct, size=self.size)
            if self.count >= self.want:
                GLib.idle_add(self.loop.quit)
        return Gst.FlowReturn.OK

    def on_error(self, _: Gst.Bus, message: Gst.Message) -> None:
        error, debug = message.parse_error()
        print(f"gstreamer error: {error.message} ({debug})", file=sys.stderr, flush=True)
        self.failed = True
        self.loop.quit()

    def run(self, timeout: float) -> int:
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add(int(timeout * 1000), self.loop.quit)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return 1 if self.failed or self.count < self.want else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    Gst.init(None)
    return Receiver(args.frames).run(args.timeout)


if __name__ == "__main__":
    sys.exit(main())
