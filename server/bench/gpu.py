"""`ganvj bench gpu`: every GPU figure in one run, as one markdown table.

    ganvj bench gpu [--out docs/gpu-results.md] [--seconds 3]
    ganvj bench gpu --quick        # reduced, on the CPU: proves the script, not a GPU

Rows: the generator forward at batch 1 on every path (fp32, the fp16 fast path,
fp16 + torch.compile), each proved against fp32 first, for `--synthetic`
StyleGAN2 and StyleGAN3-T at 512 and 1024 px; encode ms/frame at 1080p60 with
h264_nvenc against the CPU encoders (VP8, H.264); then `ganvj bench stream`
(the shared encoder against one encode per viewer: the stream ratio) and
`ganvj bench latency`, run as they run alone, their output kept below the table.
`--quick` shrinks it all (a 64 px StyleGAN2, 320x180 encodes, no stream or
latency runs) and says so in the table's title.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from models.checkpoint import LoadedModel
from models.device import cpu_threads, pick_device
from models.fastpath import FastPath, disable, prove
from models.faults import Faults
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from server.bench.forward import frame_fn, measure, synthetic

FULL_MODELS = ("stylegan2-512", "stylegan2-1024", "stylegan3-t-512", "stylegan3-t-1024")
FULL_ENCODE = (1920, 1080, 60.0)
QUICK_ENCODE = (320, 180, 60.0)
ENCODE_FRAMES = 60


def quick_model() -> LoadedModel:
    """A 64 px StyleGAN2 with fp16-flagged blocks: the shape of the real ones, CPU-sized."""
    torch.manual_seed(0)
    config = StyleGAN2Config(
        img_resolution=64, channel_base=1024, channel_max=64, mapping_layers=2, num_fp16_res=2,
        conv_clamp=256, z_dim=64, w_dim=64,
    )  # fmt: skip
    module = StyleGAN2Generator(config=config).eval().requires_grad_(False)
    return LoadedModel(
        name="quick-stylegan2-64",
        path=Path("quick.synthetic"),
        arch="stylegan2",
        kind="unconditional",
        module=module,
        resolution=64,
        z_dim=64,
        metadata={},
    )


def forward_rows(
    model: LoadedModel, device: torch.device, *, seconds: float, compile_deadline_s: float
) -> list[list[str]]:
    """fps and ms of one model on fp32, fp16 and fp16 + compile, each proved first."""
    module = model.module.to(device).eval()
    fn = frame_fn(model, device)
    label = f"{model.name} ({model.resolution} px)"
    rows: list[list[str]] = []
    for name, half, compile in (
        ("fp32", False, False),
        ("fp16", True, False),
        ("compile", True, True),
    ):
        disable(module)
        if device.type != "cuda" and name != "fp32":
            rows.append(["forward", label, name, "-", "-", "CUDA only: not measured here"])
            continue
        path: FastPath = FastPath()
        if name != "fp32":
            path = prove(
                module,
                device,
                frame=lambda i: fn(),
                allow_fp16=half,
                compile=compile,
                compile_deadline_s=compile_deadline_s,
                faults=Faults.from_env(),
            )
        fps, ms = measure(fn, seconds=seconds, device=device)
        note = path.describe() + ("" if not path.notes else f" ({'; '.join(path.notes)})")
        rows.append(["forward", label, name, f"{fps:.1f}", f"{ms:.2f}", note])
    disable(module)
    model.module.to("cpu")
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def encode_rows(width: int, height: int, fps: float) -> list[list[str]]:
    """ms/frame of each encoder at this size (NVENC where it opens)."""
    import av

    from server.media.stream import median_encode_ms, open_codec

    rows = []
    size = f"{width}x{height}@{fps:g}"
    for name in ("vp8", "h264", "h264_nvenc"):
        try:
            if name == "h264_nvenc":
                context = av.CodecContext.create("h264_nvenc", "w")
                assert isinstance(context, av.VideoCodecContext)
                context.width, context.height, context.pix_fmt = width, height, "yuv420p"
                context.options = {"preset": "p1", "tune": "ull", "zerolatency": "1"}
                context.bit_rate = 8_000_000
                context.open()
            else:
                context = open_codec(name, width=width, height=height, bitrate=8_000_000, fps=fps)
        except Exception as exc:  # noqa: BLE001 - no NVENC here: a row that says so
            rows.append(["encode", size, name, "-", "-", f"does not open: {type(exc).__name__}"])
            continue
        ms = median_encode_ms(context, width, height, ENCODE_FRAMES)
        budget = 1000.0 / fps
        note = "fits a frame" if ms < budget else f"over the {budget:.1f} ms budget"
        rows.append(["encode", size, name, f"{1000.0 / ms:.1f}", f"{ms:.2f}", note])
    return rows


def run_bench(what: str, options: Sequence[str], timeout: float) -> tuple[list[str], str]:
    """Another `ganvj bench` as a subprocess: its row and its whole output."""
    command = [sys.executable, "-m", "server.cli", "bench", what, *options]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ["bench", what, "-", "-", "-", f"did not finish in {timeout:g} s"], ""
    status = "ran (output below)" if done.returncode == 0 else f"exit {done.returncode}"
    return ["bench", what, "-", "-", "-", status], done.stdout + done.stderr


def markdown(title: str, rows: list[list[str]]) -> str:
    """One markdown table."""
    head = ["what", "item", "path", "fps", "median ms", "note"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `ganvj bench gpu`."""
    parser = argparse.ArgumentParser(prog="ganvj bench gpu", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced, CPU-sized: tests the script")
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N (cpu with --quick)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per forward path")
    parser.add_argument("--compile-deadline", type=float, default=600.0, help="seconds")
    parser.add_argument("--out", type=Path, default=Path("gpu-bench.md"), help="the table file")
    args = parser.parse_args(list(argv or []))
    device = pick_device("cpu" if args.quick and args.device == "auto" else args.device)
    torch.set_num_threads(cpu_threads(0))
    started = time.monotonic()
    if args.quick:
        title = f"ganvj bench gpu --quick: REDUCED run on {device}, not GPU figures"
        models = [quick_model()]
        seconds = min(args.seconds, 0.3)
        encode = QUICK_ENCODE
    else:
        title = f"ganvj bench gpu on {_device_name(device)}"
        models = [synthetic(name) for name in FULL_MODELS]
        seconds = args.seconds
        encode = FULL_ENCODE
    print(f"{title}; torch {torch.__version__}", flush=True)
    rows: list[list[str]] = []
    for model in models:
        rows += forward_rows(
            replace(model), device, seconds=seconds, compile_deadline_s=args.compile_deadline
        )
        print(f"  {model.name}: done", flush=True)
    rows += encode_rows(*encode)
    extra = ""
    if args.quick:
        rows.append(["bench", "stream, latency", "-", "-", "-", "skipped in --quick"])
    else:
        for what, options in (
            ("stream", ["--seconds", "6"]),
            ("latency", ["--trials", "10", "--size", "1024"]),
        ):
            row, output = run_bench(what, options, timeout=300)
            rows.append(row)
            extra += f"\n#### ganvj bench {what}\n\n```\n{output.strip()}\n```\n"
    text = markdown(title, rows) + extra
    text += f"\n({time.monotonic() - started:.0f} s in all)\n"
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda})"
    return str(device)
