"""The `ganvj` command: serve, and the model, dataset, training and bench tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.config import FILLS, Config, ConfigError, load_config

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("config.toml")

# Flag name -> dotted config key it overrides.
SERVE_OVERRIDES = {
    "host": "server.host",
    "port": "server.port",
    "osc_host": "osc.host",
    "osc_port": "osc.port",
    "model": "render.model",
    "device": "render.device",
    "fps": "render.fps",
    "size": "render.size",
    "fill": "render.fill",
    "codec": "stream.codec",
    "bitrate": "stream.bitrate_kbps",
}


BENCHMARKS = {
    "stream": "server.bench.stream",
    "control": "server.bench.control",
    "react": "server.bench.react",
    "soak": "server.bench.soak",
    "forward": "server.bench.forward",
    "latency": "server.bench.latency",
    "survive": "server.bench.survive",
    "gpu": "server.bench.gpu",
}


def build_parser(*, model_commands: bool = True) -> argparse.ArgumentParser:
    """The whole command line; `model_commands`: with the model tools' (they import torch)."""
    parser = argparse.ArgumentParser(prog="ganvj", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="render and stream live (the default model if none is given)"
    )
    serve.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config (default: ./config.toml when it exists)",
    )
    serve.add_argument("--host", help="the address HTTP and OSC listen on (default: all)")
    serve.add_argument("--port", type=int, help="the HTTP port")
    serve.add_argument("--osc-host", help="the address OSC listens on (default: --host)")
    serve.add_argument("--osc-port", type=int, help="the OSC (UDP) port")
    serve.add_argument(
        "--model",
        help="a model's name (a file stem in the models folder, see `ganvj models`) "
        "or a path to a .safetensors file or a StyleGAN .pkl",
    )
    serve.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    serve.add_argument("--fps", type=float)
    serve.add_argument(
        "--size", help='the canvas: "WxH" (1920x1080) or one number for a square; 0 = native'
    )
    serve.add_argument("--fill", choices=FILLS, help="how the model's picture fills the canvas")
    serve.add_argument("--codec", choices=["vp8", "h264"])
    serve.add_argument("--bitrate", type=int, help="video bitrate in kbit/s")
    serve.add_argument(
        "--qr",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="print the performer's link as a QR code (default: on a terminal)",
    )
    serve.add_argument(
        "--no-supervisor",
        action="store_true",
        help="run the instrument in this process, not as a restarted worker "
        "(also GANVJ_NO_SUPERVISOR=1)",
    )
    serve.set_defaults(func=run_serve)

    doctor = commands.add_parser(
        "doctor", help="check this machine before a show: what works, what does not, the fixes"
    )
    doctor.add_argument("--config", type=Path, default=None, help="as for serve")
    doctor.add_argument("--json", action="store_true", help="the same rows as JSON")
    doctor.set_defaults(func=run_doctor)

    bench = commands.add_parser("bench", help="print performance figures (README: Benchmarks)")
    bench.add_argument("what", choices=sorted(BENCHMARKS))
    bench.add_argument(
        "options",
        nargs=argparse.REMAINDER,
        help="passed on, e.g. --seconds 8 (see ganvj bench WHAT --help)",
    )
    bench.set_defaults(func=run_bench)

    if model_commands:
        _register_model_commands(commands)
    return parser


def _register_model_commands(commands: Any) -> None:
    try:
        from models.cli import register
    except ImportError:  # the models tools are optional for serving
        return
    render_modes = register(commands)
    # Replay runs the live engine, so it is wired here, above both rooms.
    from server.outputs.replay import add_parser as add_replay_parser

    add_replay_parser(render_modes)


def serve_config(args: argparse.Namespace) -> Config:
    """The config file (if any) with the command-line flags on top."""
    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    config = load_config(path)
    overrides = {
        key: getattr(args, flag)
        for flag, key in SERVE_OVERRIDES.items()
        if getattr(args, flag) is not None
    }
    if args.host is not None and args.osc_host is None:
        overrides["osc.host"] = args.host  # one flag keeps the whole server on one address
    return config.with_overrides(overrides)


def run_serve(args: argparse.Namespace) -> int:
    """`ganvj serve`."""
    from server import supervisor

    try:
        config = serve_config(args)
    except ConfigError as exc:
        print(f"ganvj: {exc}", file=sys.stderr)
        return 2
    if supervisor.wanted(args.no_supervisor):
        try:
            return supervisor.supervise(config, getattr(args, "argv", sys.argv[1:]))
        except supervisor.SupervisorError as exc:
            print(f"ganvj: {exc}", file=sys.stderr)
            return 2
    from models.checkpoint import CheckpointError
    from server.lifecycle import StartupError, serve_forever

    supervisor.wait_for_go()  # a standby worker: imported, now waits for its turn
    survival = supervisor.inherited()
    if survival.safe_reason is not None:
        config = config.with_overrides(supervisor.SAFE_SETTINGS)
    try:
        run_loop(serve_forever(config, qr=args.qr, survival=survival))
    except (ConfigError, StartupError, CheckpointError) as exc:
        print(f"ganvj: {exc}", file=sys.stderr)
        return 2
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    """`ganvj doctor [--json]`."""
    from server.doctor import main as doctor

    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"ganvj doctor: {exc}", file=sys.stderr)
        return 2
    return doctor(args, config)


def run_bench(args: argparse.Namespace) -> int:
    """`ganvj bench WHAT [options]`."""
    import importlib

    module = importlib.import_module(BENCHMARKS[args.what])
    code: int = module.main(args.options)
    return code


def run_loop(coro: Any) -> Any:
    """Run a coroutine on uvloop where it exists (it does except on Windows)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ganvj` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    # `serve` is parsed without the model tools' commands: they import torch, which the
    # supervisor (it holds the ports and waits) must not carry, load, nor tear down on a stop.
    command = next((word for word in words if not word.startswith("-")), None)
    args = build_parser(model_commands=command != "serve").parse_args(words)
    args.argv = words  # a supervisor starts its workers with the same words
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for noisy in ("aioice", "aiortc", "websockets"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
