"""Offline reactions: a pix2pix over every frame of a video, audio carried along untouched.

*reactionary* made new reaction videos from new content. `render_react` frames
each input frame exactly as live input is framed (models.framing), runs the
model, and writes an mp4 at the input's frame rate with the same frame count.
The input's audio packets are remuxed, never re-encoded. With `loop`, the last
seconds crossfade into the first, so the file loops without a seam.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from tqdm import tqdm

from models.checkpoint import LoadedModel
from models.dataset import DatasetError, open_video
from models.framing import FITS, frame_tensor, trained_fit
from models.pixels import resize, to_uint8

logger = logging.getLogger(__name__)


class ReactError(ValueError):
    """A reaction render that cannot be made; the message says why."""


def count_video_packets(path: Path) -> int:
    """Frames in the first video stream, counted from its packets (no decoding)."""
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size > 0)
    finally:
        container.close()


def render_react(
    model: LoadedModel,
    source: Path,
    out: Path,
    *,
    loop: float = 0.0,
    fit: str | None = None,
    size: int | None = None,
    progress: bool = True,
) -> int:
    """Run an image-to-image model over every frame of source; returns frames written.

    Without `loop` the output has the input's frame count and rate and all its
    audio. With `loop` = L seconds (n frames), the output starts n frames in and
    its last n frames fade from the input's last n into its first n: the file
    is n frames shorter and its end flows into its start; the audio is the
    matching stretch of the input, cut (not crossfaded) at the loop point.
    """
    if model.kind != "image2image":
        raise ReactError(f"{model.path}: is a {model.kind} model; render react needs pix2pix")
    fit = fit or trained_fit(model)
    if fit not in FITS:
        raise ReactError(f"--fit must be one of {', '.join(FITS)}, got {fit!r}")
    size = size or model.resolution
    if size % 2 or size < 16:
        raise ReactError(f"--size must be an even number >= 16, got {size}")
    try:
        total = count_video_packets(source)
        container = open_video(source)
    except DatasetError as exc:
        raise ReactError(str(exc)) from exc
    video_in = container.streams.video[0]
    rate = video_in.average_rate or video_in.guessed_rate or Fraction(25)
    fade = round(loop * rate) if loop > 0 else 0
    if fade and 2 * fade > total:
        container.close()
        raise ReactError(
            f"--loop {loop}: {fade} frames to crossfade, but {source} has only {total} "
            f"(at most {total // 2})"
        )
    device = next(model.module.parameters()).device
    out.parent.mkdir(parents=True, exist_ok=True)
    output = av.open(str(out), "w")
    try:
        video_out = output.add_stream("libx264", rate=rate)
        video_out.width = video_out.height = size
        video_out.pix_fmt = "yuv420p"
        video_out.options = {"crf": "18", "preset": "veryfast"}
        video_out.codec_context.time_base = Fraction(1) / rate
        audio_in = container.streams.audio[0] if container.streams.audio else None
        audio_out = output.add_stream_from_template(audio_in) if audio_in is not None else None
        # The loop starts `fade` frames in: audio before that is dropped, the rest shifted.
        skip_s = float(fade / rate)
        head: list[np.ndarray] = []  # the first `fade` outputs, blended in at the end
        written = index = 0

        def emit(picture: np.ndarray) -> None:
            nonlocal written
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = written
            frame.time_base = video_out.codec_context.time_base
            for packet in video_out.encode(frame):
                output.mux(packet)
            written += 1

        bar = tqdm(total=total, desc="react", unit="frames", disable=not progress)
        streams = [video_in] + ([audio_in] if audio_in is not None else [])
        with torch.no_grad():
            for packet in container.demux(*streams):
                if packet.stream.type == "audio":
                    if audio_out is None or packet.pts is None or packet.size == 0:
                        continue
                    if fade:
                        shift = round(skip_s / float(packet.time_base))
                        if packet.pts < shift:
                            continue
                        packet.pts -= shift
                        if packet.dts is not None:
                            packet.dts -= shift
                    packet.stream = audio_out
                    output.mux(packet)
                    continue
                for decoded in packet.decode():
                    assert isinstance(decoded, av.VideoFrame)  # a video stream's packet
                    x = frame_tensor(decoded, size=model.resolution, fit=fit, device=device)
                    y = model.module(x)  # (1, 3, R, R)
                    picture = to_uint8(resize(y, size))[0]  # the live reactor's resize
                    bar.update()
                    if index < fade:
                        head.append(picture)
                    elif fade and index >= total - fade:
                        j = index - (total - fade)
                        a = (j + 0.5) / fade  # 0 -> 1: from the end of the input to its start
                        mixed = (1 - a) * picture.astype(np.float32) + a * head[j]
                        emit(np.round(mixed).clip(0, 255).astype(np.uint8))
                    else:
                        emit(picture)
                    index += 1
        bar.close()
        for packet in video_out.encode():
            output.mux(packet)
    finally:
        output.close()
        container.close()
    if index != total:
        logger.warning("%s: %d frames decoded, %d packets counted", source, index, total)
    logger.info("wrote %s: %d frames at %s fps", out, written, rate)
    return written
