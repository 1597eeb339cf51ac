"""Start and stop the server as a stack: config, models, engine, encoder, network.

Each layer is an async context manager; a stop event set by SIGINT/SIGTERM
unwinds them in reverse, peers first, within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web

from controllers.audio import AudioError, AudioHub, engine_sink
from controllers.midi import MidiError, MidiPorts
from controllers.osc import OscController, OscFeedback
from controllers.osc_access import AllowList
from controllers.ws_control import error_message, parse_control, state_message
from models.checkpoint import (
    PICKLE_SUFFIXES,
    CheckpointError,
    LoadedModel,
    check_encoder_pair,
    default_model_path,
    list_models,
    load_model,
    user_models_dir,
    weights_dir,
)
from models.device import pick_device
from server import journal as journal_file
from server import showfile
from server.commands import ERROR_ADDRESS, KEYFRAMES, Change, describe, parse
from server.config import Config
from server.control import Codec, ControlHub
from server.engine import Engine, EngineHooks
from server.http.announce import announcement, lan_addresses, links
from server.http.app import App, error_response, http_response
from server.http.auth import TOKEN_FILE, Access, Role, load_tokens
from server.http.client import Client
from server.http.site import listening
from server.http.tls import TlsError, server_context
from server.http.whip import WhipWhep
from server.media.aiortc_patches import disable_zero_playout_delay, enable_zero_playout_delay
from server.media.inputs import SourceError, play_source
from server.media.stream import PacketHub, StreamEncoder
from server.meters import LeadMeter
from server.outputs.service import OutputError, Outputs
from server.showfile import ShowSaver
from server.supervisor import Survival
from server.tempo import BeatSample, LinkSource, TempoClock

logger = logging.getLogger(__name__)


SAFE_NOTICE_DELAY_S = 3.0  # after a restart on safe settings, before the one /error


class StartupError(RuntimeError):
    """The server cannot start; the message says why and what to do."""


@dataclass
class Running:
    """Handles to a started server (tests and the benchmarks use them)."""

    app: App
    engine: Engine
    port: int  # the bound port (useful with port 0)
    osc: OscController | None
    outputs: Outputs | None = None


def state_dir(config: Config) -> Path:
    """Where show files and the self-signed certificate are kept."""
    return Path(config.server.state_dir).expanduser()


def resolve_model(config: Config, device_name: str) -> LoadedModel:
    """Load the configured model, or the shipped default."""
    path = Path(config.render.model) if config.render.model else default_model_path("unconditional")
    return load_model(path, device=device_name)


def reaction_models(
    config: Config, generator: LoadedModel
) -> tuple[LoadedModel | None, LoadedModel | None, LoadedModel | None]:
    """pix2pix, the encoder and the feedback model for reactions, where they exist and fit."""
    pix2pix = _optional_model(config.render.pix2pix, "image2image")
    encoder = _optional_model(config.render.encoder, "encoder")
    feedback = _optional_model(config.render.feedback, "image2image", role="feedback")
    if encoder is not None:
        try:
            check_encoder_pair(encoder, generator)
        except CheckpointError as exc:
            # An encoder inverts one generator; any other would mirror nonsense.
            logger.info("mirror mode is off: %s", exc)
            encoder = None
    return pix2pix, encoder, feedback


def _optional_model(configured: str, kind: str, role: str | None = None) -> LoadedModel | None:
    path = Path(configured) if configured else default_model_path(role or kind)
    if not configured and not path.is_file():
        return None
    model = load_model(path)  # a configured file that is bad stops the start
    if model.kind != kind:
        raise CheckpointError(f"{path}: is a {model.kind} model, expected {kind}")
    return model


def find_model(name: str) -> Path | None:
    """The model file called `name` in the model folders, readable or not.

    An unreadable file is still returned: loading it then says exactly what
    is wrong with it, which beats "no such model" for a file the performer
    can see.
    """
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    for folder in (weights_dir(), user_models_dir()):
        path = folder / f"{name}.safetensors"
        if path.is_file():
            return path
    # A StyleGAN .pkl (or rosinality .pt) in the user's folder: converted once, on load.
    for suffix in PICKLE_SUFFIXES:
        other = user_models_dir() / f"{name}{suffix}"
        if other.is_file():
            return other
    return None


def media_source(config: Config, spec: str) -> str:
    """Resolve `file:NAME` inside the media folder (no escapes); pass others through."""
    if not spec.startswith("file:"):
        return spec
    root = Path(config.inputs.media_dir).expanduser().resolve()
    target = (root / spec.removeprefix("file:")).resolve()
    if root not in target.parents:
        raise SourceError(f"{spec!r} is not inside the media folder {root}")
    return f"file:{target}"


@contextlib.asynccontextmanager
async def running(
    config: Config,
    model: LoadedModel | None = None,
    pix2pix: LoadedModel | None = None,
    encoder: LoadedModel | None = None,
    feedback: LoadedModel | None = None,
    survival: Survival | None = None,
) -> AsyncIterator[Running]:
    """Run engine, encoder, OSC and web server until the block exits, then stop them.

    `model` (and the reaction models) default to the configured or shipped ones.
    `survival`: the sockets a supervisor holds, and why it runs safe (if it does).
    """
    survival = survival or Survival()
    try:
        device = pick_device(config.render.device)
    except RuntimeError as exc:
        raise StartupError(str(exc)) from exc
    # What the last run applied after its last show save (see server/journal.py).
    journal_path = state_dir(config) / "journal.jsonl"
    recovery, _ = journal_file.read(journal_path)
    last_model = find_model(recovery.model) if recovery.model else None
    if survival.safe_reason is not None:
        recovery.model = None  # safe settings: the shipped default model
    elif model is None and last_model is not None:
        config = config.with_overrides({"render.model": str(last_model)})
    if model is None:
        model = resolve_model(config, str(device))
        pix2pix, encoder, feedback = reaction_models(config, model)
    show_path = state_dir(config) / "show.json"
    show = _load_show(show_path)
    show.models.update(recovery.snapshots)
    for note in recovery.notes:
        logger.warning("%s", note)
    journal = journal_file.Journal(journal_path)
    loop = asyncio.get_running_loop()

    def open_source(spec: str) -> str | None:
        try:
            play_source(engine.inputs, media_source(config, spec))
        except SourceError as exc:
            return str(exc)
        return None

    saver = ShowSaver(
        show_path,
        show,
        loop,
        on_error=lambda text: control.broadcast([Change(ERROR_ADDRESS, ("/show/save", text))]),
        on_saved=lambda covers: _in_executor(loop, journal.covered, covers),
    )
    # The hooks close over `control` and `engine`, built next: they run only once
    # the render thread does, after both exist.
    engine = Engine(
        model=model,
        config=config.render,
        device=device,
        queue_size=config.limits.command_queue,
        pix2pix=pix2pix,
        encoder=encoder,
        feedback=feedback,
        snapshots=show.models,
        find_model=find_model,
        tempo=TempoClock(bpm=config.tempo.bpm),  # a restored show may set its own
        hooks=EngineHooks(
            on_changes=lambda changes: control.changes_threadsafe(changes),
            on_show=lambda snapshots: saver.save_threadsafe(snapshots, engine.index),
            on_patch=saver.save_patch_threadsafe,
            open_source=open_source,
            on_applied=lambda index, now, batches: journal.append(
                index, now, batches, lambda: {engine.model.name: engine.play.snapshot()}
            ),
        ),
    )
    osc_feedback = _osc_feedback(config)
    control = ControlHub(
        submit=engine.submit,
        loop=loop,
        codec=Codec(parse=parse_control, state=state_message, error=error_message),
        sinks=[osc_feedback.send] if osc_feedback is not None else [],
    )
    # The saved patch (routes, triggers, MIDI mappings) applies before the first frame.
    engine.submit([parse(address, args) for address, args in show.patch])
    # Then what the journal holds on top of the show: the last run's changes.
    replay = recovery.batch()
    journal.begin(recovery, replay)
    if replay:
        engine.submit(replay)
        logger.info("replayed %d commands from the journal", len(replay))

    encoder_thread: StreamEncoder | None = None
    hub: PacketHub | None = None
    lead = LeadMeter(engine.tempo, display_ms=config.tempo.display_latency_ms)
    if config.stream.shared_encoder:
        hub = PacketHub(
            loop=loop,
            queue_size=config.limits.viewer_packet_queue,
            request_keyframe=lambda: encoder_thread.request_keyframe() if encoder_thread else None,
        )
        hub.listeners.append(lead.observe)
        encoder_thread = StreamEncoder(
            frames=engine.frames,
            config=config.stream,
            fps=config.render.fps,
            on_encoded=hub.publish_threadsafe,
        )
    app = App(
        config=config,
        engine=engine,
        encoder=encoder_thread,
        hub=hub,
        control=control,
        access=_access(config),
    )
    _add_routes(app, engine, saver)
    app.status_extras["journal"] = lambda: {**journal.status(), "notes": recovery.notes}
    app.status_extras["supervisor"] = survival.status
    outputs = Outputs(
        config=config,
        engine=engine,
        hub=hub,
        encoder=encoder_thread,
        folder=state_dir(config) / "recordings",
    )
    app.status_extras["outputs"] = outputs.status
    app.add_json("/api/viewer", outputs.viewer_route)
    whip = WhipWhep(app)
    whip.register()
    app.status_extras["whip"] = whip.status
    tls = None
    if config.server.tls:
        try:
            tls, _ = server_context(
                cert=config.server.tls_cert,
                key=config.server.tls_key,
                state_dir=state_dir(config),
            )
        except TlsError as exc:
            raise StartupError(str(exc)) from exc
    # Process-wide: aiortc negotiates and writes the extension on video senders.
    if config.stream.zero_playout_delay:
        enable_zero_playout_delay()
    else:
        disable_zero_playout_delay()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(journal.close)
        stack.push_async_callback(saver.flush)  # last out: the show as it ended
        # Stopped after the engine (last in, first out), which closes the frame slot.
        if encoder_thread is not None:
            stack.enter_context(encoder_thread)
        stack.enter_context(engine)
        osc = await _start_osc(config, engine, osc_feedback, stack, survival.osc)
        if osc is not None:
            app.osc_stats = osc.stats.as_dict
        # Link stays off (no network traffic) until tempo.link or /tempo/link 1.
        link = await stack.enter_async_context(LinkSource(engine.tempo))
        engine.tempo.link_wanted = config.tempo.link and link.available
        try:
            await stack.enter_async_context(outputs)
        except OutputError as exc:
            raise StartupError(str(exc)) from exc
        _start_audio(config, engine, app, stack)
        _start_midi(config, engine, app, control, stack)
        port = await _listen(config, app, tls, stack, survival.http)
        if survival.safe_reason is not None:
            _say_safe(survival.safe_reason, control, loop)
        stack.push_async_callback(app.close)  # peers and websockets before the listener
        yield Running(app=app, engine=engine, port=port, osc=osc, outputs=outputs)


def _access(config: Config) -> Access:
    """Roles at the edge: the tokens (kept in state_dir) and who is trusted."""
    server = config.server
    try:
        tokens = load_tokens(
            state_dir(config), performer=server.performer_token, admin=server.admin_token
        )
    except OSError as exc:
        raise StartupError(f"cannot keep the access tokens in {state_dir(config)}: {exc}") from exc
    return Access(
        tokens=tokens,
        trust_loopback=server.trust_loopback,
        trusted=server.trusted,
        allowed_origins=server.allowed_origins,
    )


def _in_executor(loop: asyncio.AbstractEventLoop, work: Any, *args: Any) -> None:
    """Run blocking work (the journal's fsynced fold) off the event loop; fire and forget."""
    loop.run_in_executor(None, work, *args)


def _say_safe(reason: str, control: ControlHub, loop: asyncio.AbstractEventLoop) -> None:
    """One /error to controllers, once they are back: they reconnect within seconds."""
    logger.error("%s", reason)
    loop.call_later(
        SAFE_NOTICE_DELAY_S,
        lambda: control.broadcast([Change(ERROR_ADDRESS, ("/supervisor", reason))]),
    )


async def _listen(
    config: Config,
    app: App,
    tls: Any,
    stack: contextlib.AsyncExitStack,
    sock: Any = None,
) -> int:
    try:
        return await stack.enter_async_context(
            listening(app, config.server.host, config.server.port, tls, sock)
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {config.server.port} on {config.server.host} is already in use: "
                "stop the other server or pass --port"
            ) from exc
        raise StartupError(
            f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}"
        ) from exc


def _start_audio(
    config: Config, engine: Engine, app: App, stack: contextlib.AsyncExitStack
) -> None:
    """Audio features into the engine's sources and onset triggers (sound card, /audio page)."""
    sink = engine_sink(update=engine.sources.update, fire=engine.patch.fire, submit=engine.submit)
    audio = AudioHub(
        sink=sink,
        sample_rate=config.audio.sample_rate,
        block=config.audio.block,
        device=config.audio.device,
        sound_card=config.audio.enabled,
    )
    try:
        stack.enter_context(audio)
    except AudioError as exc:
        raise StartupError(f"{exc}; check audio.device, or set audio.enabled = false") from exc
    app.audio_in = audio.browser_block
    app.status_extras["audio"] = audio.status


def _start_midi(
    config: Config,
    engine: Engine,
    app: App,
    control: ControlHub,
    stack: contextlib.AsyncExitStack,
) -> None:
    """MIDI controllers in (mappings from the patch), LEDs out, MIDI clock as tempo."""
    tempo = engine.tempo

    def follow(sample: BeatSample) -> None:
        if not tempo.following_link:  # Link, when on, is the tempo
            tempo.follow(sample)

    midi = MidiPorts(
        inputs=config.midi.inputs,
        outputs=config.midi.outputs,
        api=config.midi.api,
        tables=lambda: engine.patch.tables,
        submit=engine.submit,
        follow_clock=follow if config.midi.clock else None,
    )
    try:
        stack.enter_context(midi)
    except MidiError as exc:
        raise StartupError(f"{exc}; check midi.inputs and midi.outputs") from exc

    def leds(changes: Sequence[Change]) -> None:
        for change in changes:
            midi.on_change(change)

    control.subscribe(leds)
    app.status_extras["midi"] = midi.status


def _osc_feedback(config: Config) -> OscFeedback | None:
    """Where state changes go by OSC: the configured targets, and later subscribers."""
    if not config.osc.enabled:
        return None
    targets = []
    for target in config.osc.feedback:
        host, _, port = target.rpartition(":")
        targets.append((host, int(port)))
    return OscFeedback(targets=targets)


async def _start_osc(
    config: Config,
    engine: Engine,
    feedback: OscFeedback | None,
    stack: contextlib.AsyncExitStack,
    sock: Any = None,
) -> OscController | None:
    if feedback is None:
        return None
    osc = OscController(
        host=config.osc.host,
        port=config.osc.port,
        submit=engine.submit,
        feedback=feedback,
        allow=AllowList(config.osc.allow),
        token=config.osc.token,
        sock=sock,
    )
    try:
        await stack.enter_async_context(osc)
    except OSError as exc:
        what = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise StartupError(
            f"OSC port {config.osc.port} on {config.osc.host}: {what}: "
            "pass another osc.port in config.toml or set osc.enabled = false"
        ) from exc
    return osc


def _add_routes(app: App, engine: Engine, saver: ShowSaver) -> None:
    app.add_json("/api/commands", describe)
    app.status_extras["show"] = saver.status

    def models() -> Any:
        found = [
            {
                "name": m.name,
                "arch": m.arch,
                "kind": m.kind,
                "resolution": m.resolution,
                "current": m.name == engine.model.name,
            }
            for m in list_models()
        ]
        return {"models": found}

    app.add_json("/api/models", models)
    app.add_json("/api/show", lambda: saver.show.to_json(), role=Role.ADMIN)

    async def thumbnail(request: web.Request) -> web.StreamResponse:
        """GET /api/thumb/N: keyframe N's thumbnail as JPEG (encoded off the event loop)."""
        try:
            n = int(request.match_info["n"])
        except ValueError:
            n = 0
        if not 1 <= n <= KEYFRAMES:
            return error_response(HTTPStatus.NOT_FOUND, f"keyframes are 1..{KEYFRAMES}")
        found = await asyncio.to_thread(engine.thumbs.jpeg, n)
        if found is None:
            return error_response(HTTPStatus.NOT_FOUND, f"keyframe {n} has no thumbnail yet")
        version, body = found
        response = http_response(HTTPStatus.OK, body, "image/jpeg")
        response.headers["ETag"] = f'"{version}"'
        return response

    app.add_route("GET", "/api/thumb/{n}", thumbnail)

    async def import_show(connection: Client, message: dict[str, Any]) -> dict[str, Any]:
        try:
            show = showfile.validate(message.get("show"), "imported show")
        except showfile.ShowFileError as exc:
            raise ValueError(str(exc)) from exc
        engine.import_show(show.models)
        engine.submit([parse("/mod/clear", []), parse("/midi/clear", [])])
        engine.submit([parse(address, args) for address, args in show.patch])
        saver.replace(show)
        return {"type": "show/imported", "models": sorted(show.models)}

    async def export_show(connection: Client, message: dict[str, Any]) -> dict[str, Any]:
        return {"type": "show", "show": saver.show.to_json()}

    app.add_message("show/import", import_show, role=Role.ADMIN)
    app.add_message("show/export", export_show, role=Role.ADMIN)


def _load_show(path: Path) -> showfile.Show:
    try:
        return showfile.load(path) or showfile.Show()
    except showfile.ShowFileError as exc:
        # Kept as .bad beside it; the show starts fresh and says so.
        logger.error("%s; starting with an empty show", exc)
        return showfile.Show()


async def serve_forever(
    config: Config, *, qr: bool | None = None, survival: Survival | None = None
) -> None:
    """Serve until SIGINT or SIGTERM; print the links (`qr`: a QR code, None = on a terminal)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(config, survival=survival) as run:
        model = run.engine.model
        logger.info(
            "serving %s (%s, %d px) at %d px on %s",
            model.name,
            model.arch,
            model.resolution,
            run.engine.output_size,
            run.engine.device,
        )
        found = links(
            addresses=lan_addresses(config.server.host),
            port=run.port,
            tls=config.server.tls,
            tokens=run.app.access.tokens,
            osc_port=run.osc.address[1] if run.osc is not None else None,
        )
        admin = (
            "config.toml (server.admin_token)"
            if config.server.admin_token
            else str(state_dir(config) / TOKEN_FILE)
        )
        show_qr = sys.stdout.isatty() if qr is None else qr
        print(announcement(found, tls=config.server.tls, admin=admin, qr=show_qr), flush=True)
        await stop.wait()
        print("ganvj: stopping", flush=True)
