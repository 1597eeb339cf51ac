"""NDI in: an NDI source on the network (`ndi:SOURCE NAME`) into an input hub, on a thread.

ndi-python (the optional `ndi` extra) finds the source by name, the local
machine's included (no avahi daemon needed), and receives BGRX frames; each
goes into the hub as any incoming video does (server.media.inputs).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import av
import numpy as np

from server.media.inputs import InputHub, SourceError

logger = logging.getLogger(__name__)

FIND_SECONDS = 10.0  # how long to look for the named source before giving up
_init_lock = threading.Lock()


def _ndi() -> Any:
    try:
        import NDIlib as ndi
    except ImportError as exc:
        raise SourceError("NDI in needs the ndi-python wheel: pip install -e '.[ndi]'") from exc
    with _init_lock:
        if not ndi.initialize():
            raise SourceError("the NDI runtime did not start (this CPU or OS is not supported)")
    return ndi


def play_ndi(hub: InputHub, spec: str) -> threading.Thread:
    """Receive the NDI source `ndi:NAME` (a part of its full name) into the hub on a thread."""
    wanted = spec.removeprefix("ndi:").strip()
    if not wanted:
        raise SourceError("an NDI source needs a name: ndi:SOURCE NAME")
    ndi = _ndi()
    name = f"ndi:{wanted}"
    stop = threading.Event()
    hub.begin(name, stop)

    def run() -> None:
        reason = "stopped"
        settings = ndi.FindCreate()
        settings.show_local_sources = True
        settings.extra_ips = "127.0.0.1"
        finder = ndi.find_create_v2(settings)
        receiver = None
        try:
            source = None
            deadline = time.monotonic() + FIND_SECONDS
            while source is None and not stop.is_set() and time.monotonic() < deadline:
                ndi.find_wait_for_sources(finder, 500)
                found = ndi.find_get_current_sources(finder)
                source = next((s for s in found if wanted in s.ndi_name), None)
            if source is None:
                reason = f"no NDI source named {wanted[:80]!r} was found"
                return
            create = ndi.RecvCreateV3()
            create.color_format = ndi.RECV_COLOR_FORMAT_BGRX_BGRA
            receiver = ndi.recv_create_v3(create)
            ndi.recv_connect(receiver, source)
            while not stop.is_set():
                kind, video, _, _ = ndi.recv_capture_v2(receiver, 200)
                if kind != ndi.FRAME_TYPE_VIDEO:
                    continue
                try:
                    bgr = np.ascontiguousarray(video.data[..., :3])
                finally:
                    ndi.recv_free_video_v2(receiver, video)
                hub.put(av.VideoFrame.from_ndarray(bgr, format="bgr24"), name)
        except Exception as exc:  # NDI fails alone; the show goes on
            reason = f"NDI receiving stopped: {type(exc).__name__}: {exc}"
            logger.exception("%s", reason)
        finally:
            if receiver is not None:
                ndi.recv_destroy(receiver)
            ndi.find_destroy(finder)
            hub.end(name, reason)

    thread = threading.Thread(target=run, name="ganvj-input-ndi", daemon=True)
    thread.start()
    return thread
