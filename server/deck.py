"""A deck: one resident generator and its latent state, and the mixer channel that holds
it with everything else a deck owns (its reaction, its video, its device)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from models.bending import Bender, Bends
from models.blending import Blend
from models.canvas import aspect_kwargs
from models.checkpoint import LoadedModel
from models.device import pick_device
from models.fastpath import FastPath
from models.faults import Faults
from models.latent_space import LatentSpace, Pose, space_for
from models.pixels import resize
from models.regions import render_regions
from server.commands import Change, Command, error, lookup, parse
from server.config import RenderConfig
from server.gpu_guard import place, prepare
from server.media.inputs import InputFrame, InputHub
from server.play import PlayState
from server.presets import Position
from server.react.reaction import Reaction
from server.react.reactor import Reactor
from server.tempo import TempoClock

logger = logging.getLogger(__name__)


@dataclass
class Deck:
    """One resident generator with its own latent state (keyframe bank, motion)."""

    model: LoadedModel
    module: nn.Module
    half: bool
    play: PlayState
    space: LatentSpace
    path: FastPath  # the proved path it plays on, and why (server.gpu_guard)
    device: torch.device
    faults: Faults
    # Network bending: (layer, cluster or 0) -> operator -> values; hooks installed by bender.
    bends: Bends = field(default_factory=dict)
    bender: Bender | None = None
    blend: Blend | None = None  # model blending toward a partner (models.blending)
    digest: str | None = None  # the weights' identity, for the cluster cache

    def render(
        self, pose: Pose, size: int, aspect: float = 1.0, regions: Sequence[Pose] = ()
    ) -> torch.Tensor:
        """A pose -> image (1, 3, size, size), roughly [-1, 1], float32, on the device.

        `aspect` != 1 (a `native` canvas): the network paints about that shape,
        `size` high (or wide, for a tall canvas), its own aspect kept. `regions`
        (more than one): a pose per region across the width, in place of `pose`.
        """
        self.faults.before_forward()  # GANVJ_FAULTS=device-error-after:N strikes here
        if len(regions) > 1:  # per-region latents across the width (server/regions.py)
            image = render_regions(self.space, regions, aspect).float()
        else:
            image = self.space.render(pose, **aspect_kwargs(aspect)).float()
        height, width = image.shape[-2], image.shape[-1]
        if height == width:
            return resize(image, size)
        if width > height:
            return resize(image, (size, round(size * width / height)))
        return resize(image, (round(size * height / width), size))

    def snapshot(self) -> dict[str, Any]:
        """Its show entry: the play state's, with its bends among the settings."""
        snapshot = self.play.snapshot()
        settings: dict[str, object] = dict(snapshot.get("settings") or {})  # type: ignore[call-overload]
        snapshot["settings"] = settings
        settings.update(self.bend_settings())
        return snapshot

    def bend_settings(self) -> dict[str, list[float]]:
        """Its bends as address -> values (/bend/LAYER[/cluster/K]/OP)."""
        settings: dict[str, list[float]] = {}
        for (layer, cluster), ops in self.bends.items():
            where = f"/bend/{layer}" + (f"/cluster/{cluster}" if cluster else "")
            for op, values in ops.items():
                settings[f"{where}/{op}"] = list(values)
        return settings


@dataclass
class PendingRecall:
    """A preset's values for a deck whose model the recall is still loading."""

    model: str  # the model they belong to: they land when it is in, on that deck
    commands: list[Command]
    position: Position | None
    seconds: float


@dataclass
class Channel:
    """One deck of the mixer and everything it owns: its generator (and the one fading out
    during a switch), its reaction and the video feeding it, its own video, its device."""

    name: str  # "a" or "b"
    device: torch.device  # where its generator, bends and blends live
    reaction: Reaction
    reactor: Reactor
    deck: Deck | None = None  # None: nothing loaded (deck b until its first load)
    fading: Deck | None = None  # the previous model, during a switch
    fade_started: float = 0.0
    inputs: InputHub = field(default_factory=InputHub)  # the reaction's input (/react/source)
    video: InputHub = field(default_factory=InputHub)  # video shown instead of the model (/source)
    loading: str | None = None  # the model a load in flight brings
    reaction_state: tuple[object, ...] = (0, 0.0, "")  # the last /react/state reported
    device_note: str | None = None  # why it plays elsewhere than configured (None: as asked)
    recall: PendingRecall | None = None
    on_film: bool = False  # its reaction was triggered on its own video (see reaction_hub)

    @property
    def reaction_hub(self) -> InputHub:
        """The input its reaction takes: its own (/react/source), or, with none set when it
        was triggered on a deck showing video (/deck/b/source), that video: pix2pix or
        feedback on the deck's film, ending with it."""
        return self.video if self.on_film and self.inputs.source is None else self.inputs

    def react_input(self, now: float) -> tuple[int, InputFrame | None]:
        """The newest live reaction input (None: none), the reaction updated by it."""
        hub = self.reaction_hub
        seq, incoming = hub.frames.latest()
        live = incoming is not None and hub.source is not None
        input_age = now - incoming.arrived_at if live and incoming is not None else None
        self.reaction.update(now, input_age=input_age, source_ended=hub.ended_reason)
        # A stopped source's last frame is not live input.
        return seq, incoming if live else None

    def react(self, command: Command, now: float) -> list[Change]:
        """/react/* but opening an input: trigger, stop, mode, mix, smoothing, inject, "?"."""
        name = command.name
        reaction = self.reaction
        if command.query:
            return [Change(command.address, self.react_query(name, now), command.origin)]
        if name == "/react/trigger":
            why = self.cannot_react(reaction.mode) or self.reactor.available(reaction.mode)
            if why is not None:
                return [error(command, why)]
            seconds = float(command.args[0]) if command.args else 0.0  # type: ignore[arg-type]
            self.on_film = self.video.source is not None
            reaction.trigger(now, seconds or None)
            return []  # reaction_changes reports it
        if name == "/react/stop":
            reaction.stop(now)
            return []
        if name == "/react/mode":
            reaction.set_mode(str(command.args[0]))
        elif name == "/react/mix":
            reaction.mix = float(command.args[0])  # type: ignore[arg-type]
        elif name == "/react/smoothing":
            reaction.smoothing = float(command.args[0])  # type: ignore[arg-type]
        elif name == "/react/inject":
            reaction.inject = float(command.args[0])  # type: ignore[arg-type]
        else:
            return [error(command, "not available in this server")]
        return [Change(command.address, self.react_query(name, now))]

    def cannot_react(self, mode: str) -> str | None:
        """Why this deck has nothing for a `mode` reaction to act on; None when it has."""
        if self.video.source is not None:
            if mode == "mirror":  # it moves a generator's latent, and the video hides that
                return (
                    f"mirror moves a generator's latent, and deck {self.name} shows its video: "
                    f"send /deck/{self.name}/source none to show its model"
                )
            return None
        if self.deck is None:
            return (
                f"deck {self.name} has nothing to react on: send /deck/{self.name}/model/load "
                f"NAME or /deck/{self.name}/source SOURCE first"
            )
        return None

    def react_query(self, name: str, now: float) -> tuple[object, ...]:
        """The current value of this deck's /react/* address."""
        reaction = self.reaction
        if name == "/react/mode":
            return (reaction.mode,)
        if name == "/react/mix":
            return (reaction.mix,)
        if name == "/react/smoothing":
            return (reaction.smoothing,)
        if name == "/react/inject":
            return (reaction.inject,)
        if name == "/react/source":
            return (self.inputs.source or "none",)
        if name == "/react/state":
            return self.react_state(now)
        return ()

    def react_state(self, now: float) -> tuple[object, ...]:
        """/react/state: reacting (0/1), the fade level, why the last reaction ended."""
        reaction = self.reaction
        return (int(reaction.active), round(reaction.level(now), 3), reaction.reason or "")

    def reaction_changes(self, now: float) -> list[Change]:
        """The reaction starting or ending (by command, timer or a lost source), once."""
        state = self.react_state(now)
        last = self.reaction_state
        if state[0] == last[0] and state[2] == last[2]:
            return []
        self.reaction_state = state
        return [Change("/react/state", state)]


def deck_device(name: str, main: torch.device) -> tuple[torch.device, str | None]:
    """Deck b's device from render.device_b ("": the main one), and why not where one named
    is absent (a second GPU missing): then the main device, so the show goes on."""
    if not name:
        return main, None
    try:
        device = pick_device(name, setting="render.device_b")
    except RuntimeError as exc:
        return main, f"{exc}: deck b plays on {main}"
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            return main, (
                f"render.device_b = {name!r} but this machine has {count} CUDA device(s): "
                f"deck b plays on {main}"
            )
    return device, None


def new_channel(
    name: str,
    device: torch.device,
    config: RenderConfig,
    reaction_models: tuple[LoadedModel | None, LoadedModel | None, LoadedModel | None],
) -> Channel:
    """Deck `name` with nothing loaded, and its reaction: (pix2pix, encoder, feedback) are
    shared by the decks, read only; what a reaction remembers is the deck's own."""
    pix2pix, encoder, feedback = reaction_models
    reaction = Reaction(fade_seconds=config.react_fade_s, stall_seconds=config.react_stall_s)
    reaction.smoothing = config.smoothing
    reaction.inject = config.feedback_inject
    reactor = Reactor(
        reaction=reaction,
        device=device,
        pix2pix=pix2pix,
        encoder=encoder,
        feedback=feedback,
        shared=name != "a",  # deck a's reactor placed them first
    )
    return Channel(name=name, device=device, reaction=reaction, reactor=reactor)


def build_deck(
    model: LoadedModel,
    *,
    now: float,
    device: torch.device,
    config: RenderConfig,
    tempo: TempoClock,
    faults: Faults,
    saved: dict[str, Any] | None,
) -> tuple[Deck, list[Command]]:
    """`model` placed on `device`, its fast path proved against fp32 (or not used), its
    latent state restored from its show entry `saved`; and that entry's bends as commands,
    for the caller to apply."""
    if model.kind != "unconditional" or model.z_dim is None:
        raise ValueError(
            f"{model.name} is a {model.kind} model; serve needs an unconditional generator"
        )
    module = place(model.module, device)
    # The fast path (a StyleGAN's fp16 blocks, compile; a DCGAN's half precision)
    # is proved against fp32 here, at load, or not used.
    module, half, path = prepare(
        model,
        module,
        device,
        half=config.half,
        compile=config.compile,
        compile_deadline_s=config.compile_deadline_s,
        faults=faults,
    )
    logger.info("%s plays on %s: %s", model.name, path.describe(), "; ".join(path.notes))
    space = space_for(model, module, half=half)
    play = PlayState(
        space=space,
        seed=config.seed,
        wander_speed=config.wander_speed,
        tempo=tempo,
        model_name=model.name,
    )
    kept: list[Command] = []
    if saved is not None:
        try:
            saved, kept = split_engine_settings(saved)
            play.restore(saved, now)
        except Exception as exc:  # noqa: BLE001 - a bad show entry must not stop a model
            logger.warning(
                "the show's state for %s is unusable (%s); starting fresh", model.name, exc
            )
    deck = Deck(
        model=model,
        module=module,
        half=half,
        play=play,
        space=space,
        path=path,
        device=device,
        faults=faults,
    )
    return deck, kept


def split_engine_settings(
    saved: dict[str, Any],
) -> tuple[dict[str, Any], list[Command]]:
    """A show entry without the engine's settings (bends), and those as commands."""
    settings = saved.get("settings")
    if not isinstance(settings, dict):
        return saved, []
    mine = {a: v for a, v in settings.items() if lookup(a)[0].persist == "engine"}
    if not mine:
        return saved, []
    rest = {a: v for a, v in settings.items() if a not in mine}
    return {**saved, "settings": rest}, [parse(a, v) for a, v in mine.items()]
