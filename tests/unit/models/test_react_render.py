"""`ganvj render react`: a real PyAV-made video with an AAC track through a pix2pix."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.checkpoint import load_model, save_checkpoint
from models.cli import main
from models.framing import square_frame
from models.nets.pix2pix import Pix2PixConfig, UNetGenerator
from models.reactions import ReactError, render_react
from tests.conftest import lively

FRAMES = 30
RATE = 12
SAMPLE_RATE = 16000


def write_clip(path: Path) -> Path:
    """30 frames at 12 fps, 64x48, each its own colour blocks, 2.5 s of a 440 Hz tone (AAC)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        t = np.arange(int(SAMPLE_RATE * FRAMES / RATE)) / SAMPLE_RATE
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        block = 1024
        for start in range(0, len(tone), block):
            frame = av.AudioFrame.from_ndarray(
                tone[None, start : start + block], format="flt", layout="mono"
            )
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
        for i in range(FRAMES):
            blocks = np.random.default_rng(i).integers(0, 256, (6, 8, 3), dtype=np.uint8)
            image = blocks.repeat(8, axis=0).repeat(8, axis=1)  # (48, 64, 3)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    return path


def audio_packets(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(int(p.pts), bytes(p)) for p in container.demux(stream) if p.size]


def video_frames(path: Path) -> tuple[list[np.ndarray], Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, Fraction(stream.average_rate)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def pix2pix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = Pix2PixConfig(resolution=16, ngf=4, ndf=4, max_channels=16)
    path = tmp_path_factory.mktemp("model") / "p.safetensors"
    weights = lively(UNetGenerator(config=config))
    save_checkpoint(path, arch="pix2pix", config=config, weights=weights, training={})
    return path


def test_keeps_frame_rate_frame_count_and_audio(clip: Path, pix2pix: Path, tmp_path: Path) -> None:
    out = tmp_path / "react.mp4"
    args = ["render", "react", str(clip), str(out), "--model", str(pix2pix), "--size", "64"]
    assert main(args) == 0
    frames, rate = video_frames(out)
    assert len(frames) == FRAMES and rate == RATE
    assert frames[0].shape == (64, 64, 3)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    # Remuxed, not re-encoded: the very same AAC packets at the same times.
    assert audio_packets(out) == audio_packets(clip)
    # Each output is the model's answer to that input frame, framed as live input is:
    # among the answers to every input frame, output i is nearest the answer to frame i.
    model = load_model(pix2pix)
    with av.open(str(clip)) as container:
        squares = [square_frame(f, size=16, fit="letterbox") for f in container.decode(video=0)]
    assert squares[2][:2].max() == 0  # 64x48 letterboxed: black bars above and below
    with torch.no_grad():
        x = torch.from_numpy(np.stack(squares)).permute(0, 3, 1, 2).float() / 127.5 - 1
        y = F.interpolate(model.module(x), size=(64, 64), mode="bilinear", antialias=True)
        answers = ((y.permute(0, 2, 3, 1) + 1) * 127.5).clamp(0, 255).numpy()
    for i in (2, 10, 20):
        errors = np.abs(answers - frames[i].astype(np.float32)).mean(axis=(1, 2, 3))
        assert int(errors.argmin()) == i, errors.round(1)
        assert errors[i] < 0.6 * errors[(i + 10) % FRAMES]


def test_loop_crossfades_the_end_into_the_start(clip: Path, pix2pix: Path, tmp_path: Path) -> None:
    plain, looped = tmp_path / "plain.mp4", tmp_path / "loop.mp4"
    model = load_model(pix2pix)
    render_react(model, clip, plain, progress=False)
    fade = 6  # 0.5 s at 12 fps
    assert render_react(model, clip, looped, loop=0.5, progress=False) == FRAMES - fade
    frames, _ = video_frames(plain)
    loop_frames, rate = video_frames(looped)
    assert len(loop_frames) == FRAMES - fade and rate == RATE
    plain_frames = np.stack(frames).astype(np.float32)

    def nearest(picture: np.ndarray) -> int:
        return int(np.abs(plain_frames - picture.astype(np.float32)).mean(axis=(1, 2, 3)).argmin())

    # It starts `fade` frames in and plays on; its last frame is nearly input frame
    # fade - 1, so playing it again from its first frame (input frame fade) has no seam.
    assert [nearest(loop_frames[k]) for k in (0, 5, 10)] == [fade, fade + 5, fade + 10]
    assert nearest(loop_frames[-1]) == fade - 1
    # Halfway through the crossfade it is a blend of the input's end and its start.
    middle = loop_frames[-fade // 2].astype(np.float32)
    end_frame, start_frame = plain_frames[FRAMES - fade // 2], plain_frames[fade - fade // 2]
    blend_error = np.abs(middle - (end_frame + start_frame) / 2).mean()
    assert blend_error < 0.7 * min(
        np.abs(middle - end_frame).mean(), np.abs(middle - start_frame).mean()
    )
    # The audio is the matching stretch, shifted to start at zero, still not re-encoded.
    original = dict(audio_packets(clip))
    kept = audio_packets(looped)
    shift = SAMPLE_RATE * fade // RATE
    assert kept and all(original[pts + shift] == data for pts, data in kept)


def test_bad_requests_are_refused(clip: Path, pix2pix: Path, tmp_path: Path) -> None:
    model = load_model(pix2pix)
    with pytest.raises(ReactError, match="only 30"):
        render_react(model, clip, tmp_path / "x.mp4", loop=2.0, progress=False)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(ReactError, match=r"notes\.mp4"):
        render_react(model, text, tmp_path / "y.mp4", progress=False)
    assert main(["render", "react", str(clip), str(tmp_path / "z.mp4"), "--model", str(clip)]) == 2
