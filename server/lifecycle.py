"""Start and stop the server as a stack: config, models, engine, encoder, network.

Each layer is an async context manager; a stop event set by SIGINT/SIGTERM
unwinds them in reverse, within a few seconds: first the HTTP listener and the
OSC endpoint stop accepting, then open websockets and peers get a grace period
to close, then what remains is cancelled; the render and encoder threads stop
last, and the show is saved as it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from controllers.audio import AudioError, AudioHub, engine_sink
from controllers.midi import MidiError, MidiPorts
from controllers.osc import OscController, OscFeedback
from controllers.osc_access import AllowList
from controllers.osc_pairing import PAIRINGS_FILE, Pairings
from controllers.ws_control import error_message, parse_control, state_message
from models.catalog import Catalog, reaction_models, resolve_model, shown, user_models_dir
from models.checkpoint import CheckpointError, LoadedModel
from models.device import pick_device
from models.names import is_model_name
from server import journal as journal_file
from server import showfile
from server.bind_errors import http_bind_message, osc_bind_message
from server.command_queue import CommandQueue
from server.commands import (
    ERROR_ADDRESS,
    SHOW_SETTINGS,
    Change,
    Command,
    CommandError,
    owned_by,
    parse,
)
from server.config import Config
from server.control import Codec, ControlHub
from server.doctor import report, run_checks
from server.engine import Engine, EngineHooks
from server.http.announce import announcement, lan_addresses, links
from server.http.api import add_api
from server.http.app import App, json_response
from server.http.auth import TOKEN_FILE, Access, Role, load_tokens
from server.http.projectors import register as register_projectors
from server.http.site import Listener, listening
from server.http.tls import TlsError, server_context
from server.http.whip import WhipWhep
from server.media.aiortc_patches import disable_zero_playout_delay, enable_zero_playout_delay
from server.media.inputs import InputHub, SourceError, play_source
from server.media.ndi_in import play_ndi
from server.media.stream import PacketHub, StreamEncoder
from server.meters import LeadMeter
from server.outputs.mapping import check_outputs
from server.outputs.rig import OutputRig
from server.outputs.service import OutputError, Outputs
from server.presets import check_presets
from server.showfile import ShowSaver
from server.supervisor import Survival
from server.tempo import BeatSample, LinkSource, TempoClock

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 3.0  # open websockets and peers get this long to close at shutdown


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


def model_catalog(config: Config) -> Catalog:
    """The models this server finds by name: the shipped ones, then state_dir/models."""
    return Catalog(user_models_dir(state_dir(config)))


def media_source(config: Config, spec: str) -> str:
    """Resolve `file:NAME` inside the media folder (no escapes); pass others through."""
    if not spec.startswith("file:"):
        return spec
    root = Path(config.inputs.media_dir).expanduser().resolve()
    target = (root / spec.removeprefix("file:")).resolve()
    if root not in target.parents:
        raise SourceError(f"{spec!r} is not inside the media folder (inputs.media_dir)")
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
    catalog = model_catalog(config)
    try:  # made at first start, so a performer has somewhere to drop a model
        catalog.user_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot make the models folder {catalog.user_dir}: {exc}") from exc
    show_path = state_dir(config) / "show.json"
    show = _load_show(show_path)
    # What the last run applied after its last show save (see server/journal.py).
    journal_path = state_dir(config) / "journal.jsonl"
    recovery, _ = journal_file.read(journal_path)
    if survival.safe_reason is not None:
        # Safe settings: the shipped default model, whatever the show or journal held.
        recovery.model = None
        show.settings.pop("/model/load", None)
    elif recovery.model is not None:
        show.settings["/model/load"] = [recovery.model]  # newer than the show's
    if model is None and (survival.restarts > 0 or recovery.model is not None):
        config = _start_with_show_model(config, show, catalog)
    if model is None:
        model = resolve_model(config.render.model, str(device), catalog=catalog)
        pix2pix, encoder, feedback = reaction_models(
            model,
            pix2pix=config.render.pix2pix,
            encoder=config.render.encoder,
            feedback=config.render.feedback,
            catalog=catalog,
        )
    show.models.update(recovery.snapshots)
    recovery.apply_presets(show.presets)
    for note in recovery.notes:
        logger.warning("%s", note)
    journal = journal_file.Journal(journal_path)
    loop = asyncio.get_running_loop()

    # The queue comes first, so the hub (which submits to it) exists before the
    # engine (which drains it and reports to the hub): each gets the other's end
    # through its constructor. The OSC edge submits to the same queue; its pairing
    # commands are applied by the edge itself, from the websocket too.
    commands = CommandQueue(config.limits.command_queue)
    osc_feedback = _osc_feedback(config)
    hub_ref: list[ControlHub] = []  # the OSC edge publishes through the hub built next
    osc = _osc_controller(
        config,
        commands.submit,
        osc_feedback,
        lambda changes: hub_ref[0].broadcast(changes),
        survival.osc,
    )
    control = ControlHub(
        submit=commands.submit,
        loop=loop,
        codec=Codec(parse=parse_control, state=state_message, error=error_message),
        sinks=[osc_feedback.send] if osc_feedback is not None else [],
        local={a: osc.apply for a in owned_by("osc")} if osc is not None else None,
    )
    hub_ref.append(control)
    saver = ShowSaver(
        show_path,
        show,
        loop,
        on_error=lambda text: control.broadcast([Change(ERROR_ADDRESS, ("/show/save", text))]),
        on_saved=lambda covers: _in_executor(loop, journal.covered, covers),
    )

    def open_input(spec: str, hub: InputHub) -> str | None:
        # An input: a file or device from the media folder and /dev, or NDI in.
        try:
            if spec.startswith("ndi:"):
                play_ndi(hub, spec)
            else:
                play_source(hub, media_source(config, spec))
        except SourceError as exc:
            return str(exc)  # names no server path, nor which paths exist
        return None

    engine = Engine(
        model=model,
        config=config.render,
        device=device,
        commands=commands,
        pix2pix=pix2pix,
        encoder=encoder,
        feedback=feedback,
        snapshots=show.models,
        presets=check_presets(show.presets),  # checked when the show loaded
        catalog=catalog,
        tempo=TempoClock(bpm=config.tempo.bpm),  # a restored show may set its own
        hooks=EngineHooks(
            on_changes=control.changes_threadsafe,
            on_show=lambda snapshots, settings: saver.save_threadsafe(
                snapshots, settings, engine.index
            ),
            on_patch=saver.save_patch_threadsafe,
            on_presets=saver.save_presets_threadsafe,
            on_applied=lambda index, now, batches: journal.append(
                index, now, batches, engine.deck_snapshots, engine.presets.to_json
            ),
            open_input=open_input,
        ),
    )
    # The show-wide settings (the model last loaded, the master grade) and the
    # saved patch (routes, triggers, MIDI mappings) apply before the first frame;
    # like BPM in a model's entry, the show's model wins over render.model.
    settings = restored_settings(show.settings)
    patch = [parse(address, args) for address, args in show.patch]
    engine.submit(settings)
    engine.submit(patch)
    # Then what the journal holds on top of the show: the last run's changes.
    replay = recovery.batch()
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
        # The tablet that opens /control with the performer's link runs TouchOSC.
        on_performer=osc.pair if osc is not None else None,
    )
    # Projector outputs: the show's, as last performed, else config.toml's [[outputs]].
    rig = OutputRig(config.outputs if show.outputs is None else check_outputs(show.outputs))
    rig.listen(lambda rig: saver.save_outputs_threadsafe(rig.to_json()))
    register_projectors(
        app,
        snapshot=lambda: {
            "outputs": {name: m.to_json() for name, m in rig.outputs.items()},
            "testcard": rig.testcard,
        },
        control=control,
    )

    def import_outputs(imported: showfile.Show) -> None:
        if imported.outputs is not None:
            control.broadcast(rig.replace_all(check_outputs(imported.outputs)))
        else:  # a show without outputs leaves the rig as it is
            imported.outputs = rig.to_json()

    add_api(app, engine, saver, catalog, on_import=import_outputs)
    _add_doctor(app, engine)
    app.status_extras["journal"] = lambda: {**journal.status(), "notes": recovery.notes}
    app.status_extras["supervisor"] = survival.status
    outputs = Outputs(
        config=config,
        engine=engine,
        hub=hub,
        encoder=encoder_thread,
        folder=state_dir(config) / "recordings",
        rig=rig,
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
        # Rewritten to hold what was recovered; the show's own batches are on disk
        # already and the replay is in that first line: none is journaled again.
        journal.begin(recovery, [settings, patch, replay])
        stack.push_async_callback(saver.flush)  # last out: the show as it ended
        # Stopped after the engine (last in, first out), which closes the frame slot.
        if encoder_thread is not None:
            stack.enter_context(encoder_thread)
        stack.enter_context(engine)
        if osc is not None:
            await _start_osc(config, osc, stack)
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
        listener = await _listen(config, app, tls, stack, survival.http)
        if survival.safe_reason is not None:
            _say_safe(survival.safe_reason, control, loop)
        # Unwinds first: stop accepting, a grace period, then the runner cancels
        # what is left; the render and encoder threads, entered first, stop last.
        stack.push_async_callback(_stop_serving, listener, osc, app)
        yield Running(app=app, engine=engine, port=listener.port, osc=osc, outputs=outputs)


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


def _start_with_show_model(config: Config, show: showfile.Show, catalog: Catalog) -> Config:
    """After a restart (or a run the journal outlived), start on the show's model directly.

    Otherwise render.model starts and the show's /model/load follows: a second load,
    and another picture meanwhile; a restart should come back as it was, at once.
    """
    args = show.settings.get("/model/load")
    if not args:
        return config
    try:
        path = catalog.resolve(str(args[0]))
    except CheckpointError:
        return config  # gone: restored_settings skips it too and says so
    return config.with_overrides({"render.model": str(path)})


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


async def _stop_serving(listener: Listener, osc: OscController | None, app: App) -> None:
    """Shutdown, as uvicorn's Server.shutdown: stop accepting, give open work a grace period.

    New connections are refused (and OSC datagrams no longer read) before any
    open websocket is told to go, so nothing new arrives while they close.
    """
    await listener.stop_accepting()
    if osc is not None:
        osc.close()
    try:
        # Websockets get a close frame (1001) and their peers close.
        await asyncio.wait_for(app.close(), SHUTDOWN_GRACE_S)
    except TimeoutError:
        logger.warning("clients still open after %.0f s; cancelling them", SHUTDOWN_GRACE_S)


async def _listen(
    config: Config,
    app: App,
    tls: Any,
    stack: contextlib.AsyncExitStack,
    sock: socket.socket | None = None,
) -> Listener:
    try:
        return await stack.enter_async_context(
            listening(app, config.server.host, config.server.port, tls, sock)
        )
    except OSError as exc:
        raise StartupError(http_bind_message(config, exc)) from exc


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


def _osc_controller(
    config: Config,
    submit: Callable[[list[Command]], bool],
    feedback: OscFeedback | None,
    publish: Callable[[Sequence[Change]], None],
    sock: socket.socket | None = None,
) -> OscController | None:
    """The OSC edge, not yet listening: who may play (pairings kept in state_dir), and where."""
    if feedback is None:
        return None
    allow = AllowList(
        config.osc.allow,
        trusted=config.server.trusted,
        trust_loopback=config.server.trust_loopback,
        pairings=Pairings(state_dir(config) / PAIRINGS_FILE),
    )
    return OscController(
        host=config.osc.host,
        port=config.osc.port,
        submit=submit,
        feedback=feedback,
        allow=allow,
        token=config.osc.token,
        publish=publish,
        sock=sock,
    )


async def _start_osc(config: Config, osc: OscController, stack: contextlib.AsyncExitStack) -> None:
    try:
        await stack.enter_async_context(osc)
    except OSError as exc:
        raise StartupError(osc_bind_message(config, exc)) from exc


def restored_settings(settings: dict[str, list[object]]) -> list[Command]:
    """The show-wide settings saved last time, as commands; a model path that is gone is skipped."""
    commands = []
    for address in SHOW_SETTINGS:
        args = settings.get(address)
        if args is None:
            continue
        a_path = address.endswith("/model/load") and args and not is_model_name(str(args[0]))
        if a_path and not Path(str(args[0])).is_file():
            logger.warning("the show's model %s is gone; starting with this one", args[0])
            continue
        try:
            commands.append(parse(address, args))
        except CommandError as exc:
            logger.warning("the show's %s is unusable: %s", address, exc)
    return commands


def _add_doctor(app: App, engine: Engine) -> None:
    """GET /api/doctor: `ganvj doctor`'s rows for this running server (seconds long)."""

    async def doctor(request: web.Request) -> web.StreamResponse:
        rows = await asyncio.to_thread(
            run_checks, app.config, engine_stats=engine.stats(), serving=True
        )
        return json_response(report(rows))

    app.add_route("GET", "/api/doctor", doctor, role=Role.PERFORMER)


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
            "serving %s (%s, %d px) on a %dx%d canvas (%s) on %s",
            model.name,
            model.arch,
            model.resolution,
            *run.engine.canvas,
            run.engine.fill,
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
        folder = shown(model_catalog(config).user_dir)
        print(f"models folder: {folder} (drop a model there, then /model/load NAME)", flush=True)
        await stop.wait()
        print("ganvj: stopping", flush=True)
