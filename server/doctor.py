"""`ganvj doctor`: before doors open, what will and will not work on this machine.

One command, seconds long: every row says what was found and, where it falls
short, the fix. `--json` gives the same rows as data; a running server answers
them on GET /api/doctor (performer), where the ports are its own and the frame
rate is the one it plays at. No check may crash the run: a missing display,
sound card, MIDI system or NDI runtime is a row that says so.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, cast

from server.config import Config

Status = Literal["ok", "warn", "fail", "info"]
MARKS = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "info": "--"}
ENCODE_FRAMES = 12  # after the first (a keyframe, and the codec's warm-up)
FPS_SECONDS = 1.0  # how long the frame rate is measured
ICE_TIMEOUT_S = 5.0
RECORD_HOURS_WANTED = 2.0  # a show's worth of recording, at the configured bitrate


@dataclass(frozen=True)
class Row:
    """One line of the report: what, how it stands, what was found, and the fix."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def _guard(name: str, check: Callable[[], Row | list[Row]]) -> list[Row]:
    """Run one check; an exception becomes its row (the doctor itself never fails)."""
    try:
        found = check()
    except Exception as exc:  # noqa: BLE001 - a broken check is a finding, not a crash
        return [Row(name, "fail", f"the check failed: {type(exc).__name__}: {exc}")]
    return found if isinstance(found, list) else [found]


# -- device, fast path, encoder ------------------------------------------------


def device_row(config: Config) -> Row:
    """The device render.device picks, and its driver."""
    import torch

    from models.device import pick_device

    try:
        device = pick_device(config.render.device)
    except RuntimeError as exc:
        return Row("device", "fail", str(exc), 'set render.device = "auto" or install the driver')
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        free, total = torch.cuda.mem_get_info(device)
        driver = _nvidia_driver()
        return Row(
            "device",
            "ok",
            f"{device}: {name}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free, "
            f"CUDA {torch.version.cuda}, driver {driver}, torch {torch.__version__}",
        )
    if device.type == "mps":
        return Row("device", "ok", f"mps (Apple GPU), torch {torch.__version__}")
    cores = os.cpu_count() or 1
    why = (
        "this torch has no CUDA"
        if torch.version.cuda is None
        else "no CUDA device or driver visible"
    )
    return Row(
        "device",
        "warn",
        f"cpu: {cores} cores, torch {torch.__version__} ({why})",
        "a GPU renders StyleGAN at show sizes: install an NVIDIA driver and a CUDA build "
        "of torch (README: Install), or keep render.size small",
    )


def _nvidia_driver() -> str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "unknown (no nvidia-smi)"
    try:
        done = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"


def fast_path_rows(config: Config, engine_stats: dict[str, Any] | None) -> list[Row]:
    """The path the configured model plays on, and its frame rate at the canvas."""
    want = config.render.fps
    if engine_stats is not None:  # a running server: its own figures, no second model
        fps = float(engine_stats.get("rendered_fps", 0.0))
        live = Row(
            "fast path",
            "ok",
            f"{engine_stats['model']} on {engine_stats['device']}: {engine_stats['path']} "
            f"({'; '.join(engine_stats.get('path_notes', [])) or 'proved at load'})",
        )
        return [live, _fps_row(fps, want, str(engine_stats["canvas"]), live=True)]
    import torch

    from models.canvas import canvas_size
    from models.catalog import Catalog, default_model_path, load_model, user_models_dir
    from models.device import cpu_threads, pick_device
    from models.faults import Faults
    from models.pixels import resize
    from server.gpu_guard import place, prepare, verify_frame

    device = pick_device(config.render.device)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(config.render.threads))
    # As serve resolves it (server.lifecycle.resolve_model, which sits above this module).
    configured = config.render.model
    state = Path(config.server.state_dir).expanduser()
    catalog = Catalog(user_models_dir(state))
    model = load_model(
        catalog.resolve(configured) if configured else default_model_path("unconditional"),
        device="cpu",
    )
    module = place(model.module, device)
    module, _, path = prepare(
        model,
        module,
        device,
        half=config.render.half,
        compile=config.render.compile,
        compile_deadline_s=config.render.compile_deadline_s,
        faults=Faults.from_env(),
    )
    frame = verify_frame(model, module)
    width, height = canvas_size(config.render.canvas, model.resolution)
    size = (height, width)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    count = 0
    with torch.inference_mode():
        resize(frame(0).float(), size)  # warm-up
        sync()
        start = time.perf_counter()
        while count < 2 or time.perf_counter() - start < FPS_SECONDS:
            resize(frame(count).float(), size)
            sync()
            count += 1
    fps = count / (time.perf_counter() - start)
    notes = "; ".join(path.notes) or "proved against fp32 at load"
    return [
        Row(
            "fast path",
            "ok" if path.verified or device.type == "cpu" else "warn",
            f"{model.name} ({model.arch}, {model.resolution} px) on {device}: "
            f"{path.describe()} ({notes})",
            "" if path.verified or device.type == "cpu" else "see the notes; fp32 plays",
        ),
        _fps_row(fps, want, f"{width}x{height}", live=False),
    ]


def _fps_row(fps: float, want: float, size: str, *, live: bool) -> Row:
    how = "rendering now" if live else "generator + scale, batch 1"
    detail = f"{fps:.1f} fps at {size} ({how}); render.fps = {want:g}"
    if fps >= want:
        return Row("frame rate", "ok", detail)
    return Row(
        "frame rate",
        "warn",
        detail,
        "lower render.size or render.fps, pick a smaller model, or render on a GPU",
    )


def encoder_rows(config: Config) -> list[Row]:
    """ms per frame of VP8 and H.264 at the canvas, and whether NVENC opens here."""
    import av

    from models.canvas import canvas_size
    from server.media.stream import median_encode_ms, open_codec

    width, height = canvas_size(config.render.canvas, 512)
    size = f"{width}x{height}"
    frame_budget = 1000.0 / config.render.fps
    rows = []
    for codec in ("vp8", "h264"):
        try:
            context = open_codec(
                codec, width=width, height=height, bitrate=config.stream.bitrate_kbps * 1000,
                fps=config.render.fps,
            )  # fmt: skip
        except (av.FFmpegError, ValueError) as exc:
            rows.append(Row(f"encoder {codec}", "fail", f"cannot open: {exc}", "reinstall av"))
            continue
        ms = median_encode_ms(context, width, height, ENCODE_FRAMES)
        chosen = " (stream.codec)" if codec == config.stream.codec else ""
        ok = ms < frame_budget / 2
        rows.append(
            Row(
                f"encoder {codec}",
                "ok" if ok else "warn",
                f"{ms:.1f} ms/frame at {size}{chosen}, budget {frame_budget:.0f} ms/frame",
                "" if ok else "lower render.size or stream.bitrate_kbps; a faster CPU",
            )
        )
    rows.append(_nvenc_row(width, height))
    return rows


def _nvenc_row(width: int, height: int) -> Row:
    import av

    try:
        av.codec.Codec("h264_nvenc", "w")
    except Exception:  # noqa: BLE001 - not built into this FFmpeg
        return Row("encoder nvenc", "info", "h264_nvenc is not in this FFmpeg build")
    try:
        context = av.CodecContext.create("h264_nvenc", "w")
        assert isinstance(context, av.VideoCodecContext)
        context.width, context.height = width, height
        context.pix_fmt = "yuv420p"
        context.open()
    except Exception as exc:  # noqa: BLE001 - no NVIDIA GPU, driver or session left
        return Row(
            "encoder nvenc",
            "info",
            f"h264_nvenc is built in but does not open here ({type(exc).__name__})",
            "NVENC needs an NVIDIA GPU and driver; the CPU encoders are used",
        )
    return Row("encoder nvenc", "ok", "h264_nvenc opens (NVIDIA hardware encoder)")


# -- network -------------------------------------------------------------------


def port_rows(config: Config, *, serving: bool) -> list[Row]:
    """The HTTP (TCP) and OSC (UDP) ports: free to bind, or held by this server."""
    rows = []
    wanted = [("HTTP port", socket.SOCK_STREAM, config.server.host, config.server.port, "--port")]
    if config.osc.enabled:
        wanted.append(("OSC port", socket.SOCK_DGRAM, config.osc.host, config.osc.port, "osc.port"))
    for name, kind, host, port, flag in wanted:
        where = f"{host}:{port} ({'TCP' if kind == socket.SOCK_STREAM else 'UDP'})"
        if serving:
            rows.append(Row(name, "ok", f"{where}: this server listens there"))
            continue
        why = _bind(kind, host, port)
        if why is None:
            rows.append(Row(name, "ok", f"{where}: free"))
        else:
            rows.append(
                Row(name, "fail", f"{where}: {why}", f"stop what holds it, or pass another {flag}")
            )
    return rows


def _bind(kind: socket.SocketKind, host: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            return "already in use" if exc.errno == errno.EADDRINUSE else str(exc.strerror)
    return None


def lan_row(config: Config) -> Row:
    """The addresses a projector on the LAN can open."""
    from server.http.announce import lan_addresses

    found = lan_addresses(config.server.host)
    scheme = "https" if config.server.tls else "http"
    if found == ["127.0.0.1"] or all(a.startswith("127.") for a in found):
        return Row(
            "LAN addresses",
            "warn",
            "only this machine (127.0.0.1): no projector can reach it",
            'join the projector\'s network (cable or Wi-Fi), or set server.host = "0.0.0.0"',
        )
    urls = ", ".join(f"{scheme}://{a}:{config.server.port}/" for a in found)
    return Row("LAN addresses", "ok", urls)


async def ice_loopback(timeout: float = ICE_TIMEOUT_S) -> str:
    """Two ICE agents on this machine's addresses connect and pass a datagram; what they used."""
    import aioice

    a = aioice.Connection(ice_controlling=True, use_ipv6=False)
    b = aioice.Connection(ice_controlling=False, use_ipv6=False)
    try:
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        if not a.local_candidates:
            raise OSError("no network address but loopback: ICE has nothing to offer")
        for here, there in ((a, b), (b, a)):
            for candidate in there.local_candidates:
                await here.add_remote_candidate(candidate)
            await here.add_remote_candidate(None)
            here.remote_username = there.local_username
            here.remote_password = there.local_password
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), timeout)
        await a.send(b"ganvj doctor")
        data = await asyncio.wait_for(b.recv(), timeout)
        if data != b"ganvj doctor":
            raise OSError(f"the datagram came back changed: {data!r}")
        pair = a._nominated.get(1)  # the pair ICE chose (aioice keeps it private)
        return str(pair.local_candidate.host) if pair is not None else "?"
    finally:
        await a.close()
        await b.close()


def udp_row() -> Row:
    """A loopback ICE check: what a WebRTC viewer's connection needs from this host."""
    try:
        host = _run_async(ice_loopback())
    except (OSError, TimeoutError, ConnectionError) as exc:
        return Row(
            "UDP (ICE)",
            "fail",
            f"two ICE agents on this machine did not connect: {exc or type(exc).__name__}",
            "a firewall drops UDP: allow UDP on the LAN interface (ufw allow proto udp "
            "from 192.168.0.0/16), or use server.ice_servers with a TURN server",
        )
    return Row("UDP (ICE)", "ok", f"two ICE agents connected over UDP on {host}")


def _run_async(coro: Any) -> Any:
    """Run a coroutine to its end from sync code, inside or outside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from a thread of a running server (asyncio.to_thread): a loop of its own.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


# -- peripherals -----------------------------------------------------------------


def ndi_row() -> Row:
    """NDI output: the runtime, present or not."""
    from server.outputs.ndi import load

    ndi, why = load()
    if ndi is None:
        return Row("NDI", "info", f"off: {why}", "only for NDI receivers (Resolume, OBS)")
    return Row("NDI", "ok", "the NDI runtime starts: /output/ndi 1 sends the canvas")


def link_row(config: Config) -> Row:
    """Ableton Link: the aalink package."""
    if importlib.util.find_spec("aalink") is None:
        return Row(
            "Ableton Link",
            "info",
            "aalink is not installed: tempo from /tempo/bpm, /tempo/tap or MIDI clock",
            "pip install aalink (only to follow Live's tempo)",
        )
    on = "on" if config.tempo.link else "off until /tempo/link 1"
    return Row("Ableton Link", "ok", f"aalink installed; Link {on}")


def midi_row(config: Config) -> Row:
    """MIDI ports the configured backend sees."""
    try:
        from controllers.midi import MidiPorts
        from server.patch import Tables

        # Only the backend is asked for: no port opens, no table is read.
        ports = MidiPorts(
            inputs=(),
            outputs=(),
            api=config.midi.api,
            tables=lambda: cast(Tables, None),
            submit=lambda batch: True,
        )
        names = list(ports.backend().get_input_names())
    except Exception as exc:  # noqa: BLE001 - no rtmidi, no ALSA/JACK: a row, not a crash
        return Row(
            "MIDI",
            "info",
            f"no MIDI system here ({type(exc).__name__}: {exc})",
            "install python-rtmidi and ALSA/JACK (only for MIDI controllers)",
        )
    missing = [w for w in config.midi.inputs if not any(n.startswith(w) for n in names)]
    if missing:
        return Row(
            "MIDI",
            "warn",
            f"configured inputs not found: {', '.join(missing)}; present: {names or 'none'}",
            "plug the controller in, or fix midi.inputs",
        )
    return Row("MIDI", "ok" if names else "info", f"inputs: {', '.join(names) or 'none'}")


def audio_row(config: Config) -> Row:
    """The sound card audio reactivity would open."""
    try:
        import sounddevice as sd

        devices = sd.query_devices()
    except Exception as exc:  # noqa: BLE001 - no PortAudio library or no audio system
        return Row(
            "audio input",
            "warn" if config.audio.enabled else "info",
            f"no audio system here ({type(exc).__name__}: {exc})",
            "install PortAudio (apt install libportaudio2) and a sound card, or use the "
            "/audio page (the browser's microphone)",
        )
    inputs = [d["name"] for d in devices if d.get("max_input_channels", 0) > 0]
    wanted = config.audio.device
    status: Status = "warn" if config.audio.enabled else "info"
    if wanted:
        if wanted.isdigit():
            found = int(wanted) < len(devices) and devices[int(wanted)]["max_input_channels"] > 0
        else:
            found = any(wanted in name for name in inputs)
        if not found:
            return Row(
                "audio input",
                status,
                f"audio.device {wanted!r} is not an input device here; present: "
                f"{', '.join(inputs) or 'none'}",
                "plug the sound card in, or set audio.device to one of those",
            )
        return Row("audio input", "ok", f"{wanted} present")
    if not inputs:
        return Row(
            "audio input",
            status,
            "no audio input device",
            "plug in a sound card, or use the /audio page (the browser's microphone)",
        )
    return Row("audio input", "ok", f"default input; present: {', '.join(inputs)}")


def display_row() -> Row:
    """A display is not needed (viewers are browsers); say which there is."""
    shown = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
    if shown:
        return Row("display", "ok", f"display {shown}: a local browser can be the projector")
    return Row(
        "display",
        "info",
        "no display: fine for a server; open the viewer on the projector machine",
    )


# -- access and storage -----------------------------------------------------------


def access_row(config: Config) -> list[Row]:
    """TLS, and where the tokens come from."""
    from server.http.auth import TOKEN_FILE

    server = config.server
    rows = []
    if server.tls:
        if server.tls_cert:
            missing = [p for p in (server.tls_cert, server.tls_key) if not Path(p).is_file()]
            if missing:
                rows.append(
                    Row("TLS", "fail", f"missing: {', '.join(missing)}", "fix server.tls_cert/key")
                )
            else:
                rows.append(Row("TLS", "ok", f"https with {server.tls_cert}"))
        else:
            rows.append(Row("TLS", "ok", "https with a self-signed pair kept in the state dir"))
    else:
        rows.append(
            Row(
                "TLS",
                "info",
                "off: http (the viewer and control pages work; a phone camera needs https)",
                "server.tls = true for /camera from phones",
            )
        )
    kept = _state_dir(config) / TOKEN_FILE
    where = (
        "config.toml"
        if server.admin_token
        else (f"{kept}" if kept.exists() else "made at first start, kept in the state dir")
    )
    trusted = ", ".join(server.trusted) or "nobody"
    rows.append(Row("tokens", "ok", f"admin/performer tokens: {where}; trusted: {trusted}"))
    return rows


def _state_dir(config: Config) -> Path:
    return Path(config.server.state_dir).expanduser()  # as server.lifecycle.state_dir


def storage_rows(config: Config) -> list[Row]:
    """The state directory writable, and room to record."""
    folder = _state_dir(config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-", delete=True) as handle:
            handle.write(b"ok")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        return [
            Row(
                "state dir",
                "fail",
                f"{folder}: not writable ({exc.strerror or exc})",
                "fix its permissions, or set server.state_dir to a writable folder",
            )
        ]
    rows = [Row("state dir", "ok", f"{folder}: writable")]
    free = shutil.disk_usage(folder).free
    per_hour = config.stream.bitrate_kbps * 1000 / 8 * 3600  # bytes an hour of recording
    hours = free / per_hour
    detail = (
        f"{free / 2**30:.1f} GiB free: {hours:.1f} h of recording at "
        f"{config.stream.bitrate_kbps} kbit/s"
    )
    if hours >= RECORD_HOURS_WANTED:
        rows.append(Row("disk", "ok", detail))
    else:
        rows.append(Row("disk", "warn", detail, "free some space before recording a show"))
    return rows


# -- the report -------------------------------------------------------------------


def offline_row(config: Config, repo: Path | None = None) -> Row:
    """What needs the internet: STUN/TURN servers, and an install that is out of date."""
    needs = []
    if config.server.ice_servers:
        needs.append(
            f"server.ice_servers ({', '.join(config.server.ice_servers)}) are not reachable "
            "offline; viewers on the LAN connect without them"
        )
    root = repo if repo is not None else Path(__file__).resolve().parents[1]
    stamp, pyproject = root / ".venv" / ".ganvj-install", root / "pyproject.toml"
    if pyproject.is_file() and (root / ".venv").is_dir():
        digest = hashlib.sha256(pyproject.read_bytes()).hexdigest()
        installed = stamp.read_text().split()[:1] if stamp.is_file() else []
        if installed != [digest]:
            needs.append("scripts/serve will install (pyproject.toml changed): it needs PyPI once")
    if needs:
        return Row(
            "offline",
            "warn",
            "; ".join(needs),
            "run ./scripts/install while online, and leave server.ice_servers empty on a LAN",
        )
    return Row("offline", "ok", "nothing here needs the internet: models ship with ganvj")


def run_checks(
    config: Config,
    *,
    engine_stats: dict[str, Any] | None = None,
    serving: bool = False,
) -> list[Row]:
    """Every row, in the order a performer reads them (slow checks bounded)."""
    rows: list[Row] = []
    rows += _guard("device", lambda: device_row(config))
    rows += _guard("fast path", lambda: fast_path_rows(config, engine_stats))
    rows += _guard("encoder", lambda: encoder_rows(config))
    rows += _guard("ports", lambda: port_rows(config, serving=serving))
    rows += _guard("LAN addresses", lambda: lan_row(config))
    rows += _guard("UDP (ICE)", udp_row)
    rows += _guard("NDI", ndi_row)
    rows += _guard("Ableton Link", lambda: link_row(config))
    rows += _guard("MIDI", lambda: midi_row(config))
    rows += _guard("audio input", lambda: audio_row(config))
    rows += _guard("display", display_row)
    rows += _guard("TLS", lambda: access_row(config))
    rows += _guard("state dir", lambda: storage_rows(config))
    rows += _guard("offline", lambda: offline_row(config))
    return rows


def report(rows: list[Row]) -> dict[str, Any]:
    """The rows as data (GET /api/doctor, --json)."""
    return {
        "ok": not any(r.status == "fail" for r in rows),
        "rows": [asdict(r) for r in rows],
    }


def table(rows: list[Row]) -> str:
    """The rows as a terminal table: check, status, what was found, and the fix."""
    width = max(len(r.name) for r in rows)
    lines = []
    for r in rows:
        lines.append(f"{r.name:<{width}}  {MARKS[r.status]:<4}  {r.detail}")
        if r.fix:
            lines.append(f"{'':<{width}}        fix: {r.fix}")
    failed = sum(r.status == "fail" for r in rows)
    warned = sum(r.status == "warn" for r in rows)
    lines.append(f"\n{failed} failing, {warned} to look at, {len(rows)} checks")
    return "\n".join(lines)


def main(args: argparse.Namespace, config: Config) -> int:
    """`ganvj doctor [--json]`: 0 when nothing fails, 1 otherwise."""
    rows = run_checks(config)
    if args.json:
        print(json.dumps(report(rows), indent=2))
    else:
        print(table(rows))
    return 0 if report(rows)["ok"] else 1
