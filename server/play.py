"""The performer-facing latent state: where in latent space the picture is.

Pure and clock-driven: the render thread applies commands with `apply()` and
calls `pose()` once per frame with the frame's time. No threads, no I/O, no
clock of its own, so it is tested with a simulated clock.

The position is a motion from `from` to a target (a fixed latent, or the
moving wander loop) over a duration with an easing; every new target starts
from wherever the picture is, so nothing ever jumps unless asked to (a morph
of 0 seconds). Directions and truncation are live layers on top: a stored
keyframe is the position under them.

The position lives in the model's latent space (models.latent_space): z for a
DCGAN, W for a StyleGAN, where style mixing, noise and the SG3 transform are
further live layers. A StyleGAN control sent to a DCGAN changes nothing and
is answered with an /error naming why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from models.latent_maths import ease, interpolate
from models.latent_space import (
    STYLE_RANGES,
    LatentSpace,
    Mix,
    Pose,
    Style,
    ZSpace,
)
from server.commands import (
    DIRECTIONS,
    ERROR_ADDRESS,
    KEYFRAMES,
    MAX_SEED,
    Change,
    Command,
    CommandError,
    Persist,
    error,
    lookup,
    parse,
    persisted,
)
from server.tempo import TempoClock

logger = logging.getLogger(__name__)

DIRECTION_SCALE = 3.0  # a fader at 1.0 moves this far along a unit direction
WANDER_FADE_SECONDS = 2.0  # turning wander on glides onto the loop
XY_GLIDE_SECONDS = 0.08  # XY pad messages glide, so a coarse pad never cuts


@dataclass(frozen=True)
class _Pending:
    start: float
    target: Tensor
    duration: float
    keyframe: int  # 0 when the target is not a keyframe


class PlayState:
    """Latent position of the live picture; the render thread is its only user."""

    def __init__(
        self,
        *,
        z_dim: int | None = None,
        space: LatentSpace | None = None,
        seed: int = 0,
        wander_speed: float = 1.0,
        keyframes: int = KEYFRAMES,
        directions: Tensor | None = None,
        mean: Tensor | None = None,
        tempo: TempoClock | None = None,
        model_name: str = "this model",
    ) -> None:
        if keyframes < 4:
            raise ValueError(f"keyframes must be at least 4 (the XY corners), got {keyframes}")
        if space is None:
            if z_dim is None:
                raise ValueError("give z_dim or a latent space")
            space = ZSpace(z_dim)
        self.space = space
        self.dim = space.dim
        self.model_name = model_name
        self.tempo = tempo if tempo is not None else TempoClock()
        self._seed = seed
        self._rng = torch.Generator().manual_seed(int(seed) + 15485863)
        self.label = 0  # class of a conditional model
        # Keyframe n starts as seed (seed + n - 1), as `ganvj render tour` numbers them.
        self.bank = space.seeds([(seed + i) % 2**32 for i in range(keyframes)])  # (n, dim)
        self.bank_seeds: list[int | None] = [seed + i for i in range(keyframes)]
        if directions is None:
            directions = space.directions(DIRECTIONS, seed)
        elif space.name == "z":
            directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        self.directions = directions  # (k, dim): a fader at 1 moves DIRECTION_SCALE of one
        self.mean = mean if mean is not None else space.mean
        # Settings
        self.interp = "slerp"
        self.easing = "smooth"
        self.quantize = "off"
        self.unit = "seconds"
        self.morph_time = 2.0
        self.wander_speed = wander_speed
        self.wander = True
        self.truncation = 1.0
        self.amounts = [0.0] * DIRECTIONS
        self.xy = (0.5, 0.5)
        self.seed = seed
        self.current = 0  # keyframe last jumped to, 0 for none
        self.sequence_length = min(8, keyframes)
        self.sequence_step = 4.0
        self.playing = False
        # StyleGAN layers: style mixing per range [keyframe, amount], noise, SG3 transform
        self.mix: dict[str, tuple[int, float]] = {name: (0, 0.0) for name in STYLE_RANGES}
        self.noise_mode = "const"
        self.noise_strength = 1.0
        self.angle = 0.0
        self.translate = (0.0, 0.0)
        self.zoom = 1.0
        self.spin = 0.0
        # Motion
        self._wander = space.wander(seed)
        self._wander_clock = 0.0
        start = self._wander.at(0.0)
        self._from = start
        self._to: Tensor | None = None  # None: the wander loop
        self._start = 0.0
        self._duration = 0.0
        self._pending: _Pending | None = None
        self._events: list[Change] = []
        self._now = 0.0  # the latest time seen, for queries

    # Per frame

    @property
    def z_dim(self) -> int:
        """Length of a position (z_dim for a DCGAN, w_dim for a StyleGAN)."""
        return self.dim

    def pose(self, now: float, dt: float) -> Pose:
        """Everything the frame at `now` shows: position, style mixes, synthesis settings."""
        latent = self.latent(now, dt)
        if self.spin:
            self.angle = (self.angle + self.spin * dt + 180.0) % 360.0 - 180.0
        if self.space.name == "z":
            return Pose(latent)
        mixes = []
        for name, (n, amount) in self.mix.items():
            start, stop = self.space.ranges[name]
            if 0 < n <= self.bank.shape[0] and amount > 0.0 and stop > start:
                mixes.append(Mix(start, stop, self._truncate(self.bank[n - 1]), amount))
        return Pose(latent, tuple(mixes), self._style())

    def keyframe_pose(self, n: int) -> Pose:
        """Keyframe n as the live picture would show it (truncation, noise, transform)."""
        latent = self._truncate(self.bank[n - 1])
        return Pose(latent) if self.space.name == "z" else Pose(latent, style=self._style())

    def _style(self) -> Style:
        return Style(
            noise_mode=self.noise_mode,
            noise_strength=self.noise_strength,
            angle=self.angle,
            translate=self.translate,
            zoom=self.zoom,
        )

    def latent(self, now: float, dt: float) -> Tensor:
        """The position for the frame at `now`, `dt` seconds after the previous one."""
        self._now = now
        if self.wander and self._to is None:
            self._wander_clock += dt * self.wander_speed
        if self._pending is not None and now >= self._pending.start:
            self._activate(self._pending, now, announce=True)
        if self.playing and self._pending is None:
            self._advance_sequence(now)
        z = self._anchor(now)
        if any(self.amounts):
            count = self.directions.shape[0]
            weights = torch.tensor(self.amounts[:count], dtype=z.dtype)
            z = z + DIRECTION_SCALE * (weights[:, None] * self.directions[: len(weights)]).sum(0)
        return self._truncate(z)  # (dim,)

    def _truncate(self, z: Tensor) -> Tensor:
        # Linear and the same for every layer, so truncating the position and each
        # mixing source equals NVIDIA's truncation of the mixed (num_ws, w_dim).
        if self.truncation == 1.0:
            return z
        return self.mean + self.truncation * (z - self.mean)

    def morph(self, now: float) -> tuple[int, float]:
        """The keyframe the picture is heading to (0: none) and the morph's progress 0..1."""
        if self._pending is not None:
            return (self._pending.keyframe, 0.0)
        if self._to is None or self.current == 0:
            return (0, 1.0)
        if self._duration <= 0.0:
            return (self.current, 1.0)
        return (self.current, min(max((now - self._start) / self._duration, 0.0), 1.0))

    def position(self, now: float) -> Tensor:
        """Where the motion stands now, before directions and truncation (a preset keeps it)."""
        return self._anchor(now).clone()

    def glide_to(self, target: Tensor, now: float, seconds: float) -> None:
        """Morph to a stored position (a preset's recall); wander and a tour keep their own."""
        if self.wander or self.playing or target.shape != (self.dim,):
            return
        if self._pending is not None and self._pending.keyframe:
            self.current = self._pending.keyframe  # the keyframe it was heading to: kept
        self._pending = None
        self._glide(target.to(self.bank.dtype), now, seconds)

    def take_changes(self) -> list[Change]:
        """Changes that happened with time (a sequence step, a quantized jump landing)."""
        events, self._events = self._events, []
        return events

    # Commands

    def apply(self, command: Command, now: float) -> list[Change]:
        """Apply one validated command at `now`; the feedback to send."""
        self._now = now
        if command.query:
            return [self.query(command.address, to=command.origin)]
        handler = _HANDLERS.get(command.name)
        if handler is None:
            raise CommandError(f"{command.address}: not handled by the latent state")
        return handler(self, command, now)

    def apply_batch(
        self, batch: Sequence[Command], now: float
    ) -> tuple[list[Change], list[Command]]:
        """Apply a batch (a bundle) at one instant; its feedback and the commands left
        for the engine (reactions, models), in order."""
        changes: list[Change] = []
        rest: list[Command] = []
        for command in batch:
            if self.handles(command):
                changes.extend(self.apply(command, now))
            else:
                rest.append(command)
        return changes, rest

    def handles(self, command: Command) -> bool:
        """True when `apply()` understands this command (the engine handles the rest)."""
        return command.name in _HANDLERS or command.name in _QUERIES

    def query(self, address: str, *, to: object = None) -> Change:
        """The current value of an address, as a Change."""
        spec, path = lookup(address)
        answer = _QUERIES.get(spec.pattern)
        if answer is None:
            raise CommandError(f"{address}: not answered by the latent state")
        return Change(address, answer(self, path), to)

    def state(self) -> list[Change]:
        """Every value this state answers, e.g. to greet a new controller."""
        out: list[Change] = []
        for pattern in _QUERIES:
            if pattern == "/latent/dir/{k}":
                out.extend(self.query(f"/latent/dir/{k}") for k in range(1, DIRECTIONS + 1))
            else:
                out.append(self.query(pattern))
        return out

    # Show file

    def persisted(self) -> tuple[str, ...]:
        """The settings this model's show entry keeps."""
        kinds: set[Persist] = {"always"}
        if self.space.name == "w":
            kinds.add("w")
        if self.space.classes:
            kinds.add("classes")
        if self.space.transformable:
            kinds.add("transform")
        return persisted(kinds)

    def snapshot(self) -> dict[str, object]:
        """Keyframes (z, or W for a StyleGAN) and settings as JSON-ready data."""
        space = self.space.name
        return {
            **({} if space == "z" else {"space": space}),
            f"{space}_dim": self.dim,
            "keyframes": [[float(v) for v in row] for row in self.bank.tolist()],
            "settings": {address: list(self.query(address).args) for address in self.persisted()},
        }

    def restore(self, data: Mapping[str, object], now: float) -> list[Change]:
        """Load a snapshot (validated here, through the registry); ValueError if bad."""
        space = data.get("space", "z")
        if space != self.space.name:
            raise ValueError(
                f"keyframes are in {space}, {self.model_name} plays in {self.space.name}"
            )
        keyframes = data.get("keyframes")
        if keyframes is not None:
            bank = torch.tensor(keyframes, dtype=torch.float32)
            if bank.ndim != 2 or bank.shape[1] != self.dim:
                raise ValueError(f"keyframes must be (n, {self.dim}), got {tuple(bank.shape)}")
            if not bool(torch.isfinite(bank).all()):
                raise ValueError("keyframes contain NaN or infinity")
            count = min(bank.shape[0], self.bank.shape[0])
            self.bank[:count] = bank[:count]
            self.bank_seeds[:count] = [None] * count
        settings = data.get("settings", {})
        if not isinstance(settings, Mapping):
            raise ValueError("settings must be an object of address -> args")
        commands = [parse(address, args) for address, args in settings.items()]
        changes: list[Change] = []
        for command in commands:
            for change in self.apply(command, now):
                if change.address == ERROR_ADDRESS:
                    # A setting this model cannot take (say, style mixing kept for a
                    # DCGAN by hand): skipped, the rest of the show still loads.
                    logger.warning("show setting skipped: %s: %s", *change.args)
                else:
                    changes.append(change)
        return changes

    # Motion

    def _anchor(self, now: float) -> Tensor:
        target = self._wander.at(self._wander_clock) if self._to is None else self._to
        if self._duration <= 0.0 or now >= self._start + self._duration:
            return target
        if now <= self._start:
            return self._from
        progress = ease(self.easing, (now - self._start) / self._duration)
        if progress >= 1.0:
            return target
        return self._blend(self._from, target, progress)

    def _blend(self, a: Tensor, b: Tensor, t: float) -> Tensor:
        centre = self.space.mean if self.space.name == "w" else None  # slerp about w_avg
        return interpolate(a, b, t, mode=self.interp, centre=centre)

    def _glide(self, target: Tensor | None, now: float, duration: float) -> None:
        self._from = self._anchor(now)
        self._to = target
        self._start = now
        self._duration = duration

    def _seconds(self, time: float) -> float:
        return self.tempo.beats_to_seconds(time) if self.unit == "beats" else time

    def _start_time(self, now: float, grid: str | None = None) -> float:
        grid = grid or self.quantize
        if grid == "beat":
            return self.tempo.next_beat(now)
        if grid == "bar":
            return self.tempo.next_bar(now)
        return now

    def _jump(self, target: Tensor, now: float, duration: float, keyframe: int) -> list[Change]:
        changes = self._stop_wander()
        pending = _Pending(self._start_time(now), target, duration, keyframe)
        if pending.start <= now:
            self._activate(pending, now, announce=False)
            if keyframe:
                changes.append(Change("/keyframe/current", (keyframe,)))
        else:
            self._pending = pending
        return changes

    def _activate(self, pending: _Pending, now: float, *, announce: bool) -> None:
        self._pending = None
        self._from = self._anchor(now)
        self._to = pending.target
        self._start = pending.start
        self._duration = pending.duration
        if pending.keyframe and announce:
            # A quantized jump landing: the frame that shows it reports it.
            self._events.append(Change("/keyframe/current", (pending.keyframe,)))
        if pending.keyframe:
            self.current = pending.keyframe

    def _stop_wander(self) -> list[Change]:
        if not self.wander:
            return []
        self.wander = False
        return [Change("/latent/wander", (0,))]

    def _stop_sequence(self) -> list[Change]:
        if not self.playing:
            return []
        self.playing = False
        return [Change("/sequence/play", (0,))]

    def _advance_sequence(self, now: float) -> None:
        end = self._start + self._duration
        if now < end:
            return
        step = self._seconds(self.sequence_step)
        # A render that stalled for more than a step restarts the tour clock here.
        start = end if now - end <= step else now
        following = self.current + 1 if 1 <= self.current < self.sequence_length else 1
        self._from = self._anchor(now)
        self._to = self.bank[following - 1].clone()
        self._start = start
        self._duration = step
        self.current = following
        self._events.append(Change("/keyframe/current", (following,)))

    # Handlers: one per pattern, each returns its feedback.

    def _on_xy(self, command: Command, now: float) -> list[Change]:
        x, y = float(command.args[0]), float(command.args[1])  # type: ignore[arg-type]
        self.xy = (x, y)
        changes = self._stop_wander() + self._stop_sequence()
        self._pending = None
        corners = self.bank[:4]
        top, bottom = self._blend(corners[0], corners[1], x), self._blend(corners[2], corners[3], x)
        self._glide(self._blend(top, bottom, y), now, XY_GLIDE_SECONDS)
        self.current = 0
        return [*changes, Change("/latent/xy", (x, y))]

    def _on_dir(self, command: Command, now: float) -> list[Change]:
        k = command.index("k")
        count = self.directions.shape[0]
        if k > count:
            return [error(command, f"{self.model_name} has {count} directions, not {k}")]
        self.amounts[k - 1] = float(command.args[0])  # type: ignore[arg-type]
        return [Change(command.address, (self.amounts[k - 1],))]

    def _on_wander(self, command: Command, now: float) -> list[Change]:
        on = bool(command.args[0])
        changes: list[Change] = []
        if on and not self.wander:
            changes = self._stop_sequence()
            self._pending = None
            self._glide(None, now, WANDER_FADE_SECONDS)
        elif not on and self.wander:
            self._glide(self._anchor(now), now, 0.0)
        self.wander = on
        return [*changes, Change("/latent/wander", (int(on),))]

    def _on_speed(self, command: Command, now: float) -> list[Change]:
        self.wander_speed = float(command.args[0])  # type: ignore[arg-type]
        return [Change("/latent/speed", (self.wander_speed,))]

    def _on_seed(self, command: Command, now: float) -> list[Change]:
        self.seed = int(command.args[0])  # type: ignore[call-overload]
        changes = self._stop_sequence()
        target = self.space.seed(self.seed, self.label)
        changes += self._jump(target, now, self._seconds(self.morph_time), 0)
        self.current = 0
        return [*changes, Change("/latent/seed", (self.seed,))]

    def _on_class(self, command: Command, now: float) -> list[Change]:
        n = int(command.args[0])  # type: ignore[call-overload]
        classes = self.space.classes
        if not classes:
            return [error(command, f"{self.model_name} is not conditional: it has no classes")]
        if n >= classes:
            return [error(command, f"{self.model_name} has classes 0..{classes - 1}, not {n}")]
        self.label = n
        self._wander = self.space.wander(self._seed, n)
        changes: list[Change] = []
        if self.wander:
            self._glide(None, now, self._seconds(self.morph_time))
        else:
            changes = self._stop_sequence()
            target = self.space.seed(self.seed, n)
            changes += self._jump(target, now, self._seconds(self.morph_time), 0)
            self.current = 0
        return [*changes, Change("/latent/class", (n,))]

    def _refuse(self, command: Command, needs: str) -> list[Change] | None:
        """An /error when this model lacks what the command needs, else None."""
        if needs == "w" and self.space.name != "w":
            why = f"{self.model_name} is a {self.space.arch}: {command.address} needs a StyleGAN"
        elif needs == "transform" and not self.space.transformable:
            why = (
                f"{self.model_name} is a {self.space.arch} with no input transform: "
                f"{command.address} needs a StyleGAN3"
            )
        else:
            return None
        return [error(command, why)]

    def _on_style(self, command: Command, now: float) -> list[Change]:
        refused = self._refuse(command, "w")
        if refused:
            return refused
        _, _, name, what = command.name.split("/")
        value = command.args[0]
        if name == "noise":
            if what == "mode":
                self.noise_mode = str(value)
            else:
                self.noise_strength = float(value)  # type: ignore[arg-type]
        elif what == "keyframe":
            self.mix[name] = (int(value), self.mix[name][1])  # type: ignore[call-overload]
        else:
            self.mix[name] = (self.mix[name][0], float(value))  # type: ignore[arg-type]
        return [Change(command.address, (value,))]

    def _on_transform(self, command: Command, now: float) -> list[Change]:
        refused = self._refuse(command, "transform")
        if refused:
            return refused
        what = command.name.rsplit("/", 1)[1]
        args = command.args
        if what == "reset":
            self.angle, self.translate, self.zoom, self.spin = 0.0, (0.0, 0.0), 1.0, 0.0
            return [
                Change(f"/transform/{name}", _QUERIES[f"/transform/{name}"](self, {}))
                for name in ("rotate", "translate", "zoom", "spin")
            ]
        if what == "rotate":
            self.angle = float(args[0])  # type: ignore[arg-type]
        elif what == "translate":
            self.translate = (float(args[0]), float(args[1]))  # type: ignore[arg-type]
        elif what == "zoom":
            self.zoom = float(args[0])  # type: ignore[arg-type]
        else:
            self.spin = float(args[0])  # type: ignore[arg-type]
        return [Change(command.address, _QUERIES[command.name](self, {}))]

    def _on_truncation(self, command: Command, now: float) -> list[Change]:
        self.truncation = float(command.args[0])  # type: ignore[arg-type]
        return [Change("/latent/truncation", (self.truncation,))]

    def _keyframe_jump(self, n: int, command: Command, now: float) -> list[Change]:
        time = float(command.args[0]) if command.args else self.morph_time  # type: ignore[arg-type]
        return self._jump(self.bank[n - 1].clone(), now, self._seconds(time), n)

    def _on_jump(self, command: Command, now: float) -> list[Change]:
        return self._keyframe_jump(command.index(), command, now)

    def _on_current(self, command: Command, now: float) -> list[Change]:
        n = int(command.args[0])  # type: ignore[call-overload]
        return self._jump(self.bank[n - 1].clone(), now, self._seconds(self.morph_time), n)

    def _on_step(self, command: Command, now: float) -> list[Change]:
        count = self.bank.shape[0]
        base = self.current or 1
        delta = 1 if command.name == "/keyframe/next" else -1
        n = (base - 1 + delta) % count + 1 if self.current else 1
        return self._keyframe_jump(n, command, now)

    def _on_store(self, command: Command, now: float) -> list[Change]:
        n = command.index()
        self.bank[n - 1] = self._anchor(now)
        self.bank_seeds[n - 1] = None
        return [Change(command.address, ())]

    def _on_reshuffle(self, command: Command, now: float) -> list[Change]:
        n = command.index()
        seed = int(torch.randint(0, MAX_SEED + 1, (1,), generator=self._rng))
        self.bank[n - 1] = self.space.seed(seed, self.label)
        self.bank_seeds[n - 1] = seed
        return [Change(command.address, (seed,))]

    def _on_setting(self, command: Command, now: float) -> list[Change]:
        value = command.args[0]
        attribute = _SETTINGS[command.name]
        setattr(self, attribute, value)
        return [Change(command.address, (value,))]

    def _on_play(self, command: Command, now: float) -> list[Change]:
        on = bool(command.args[0]) if command.args else True
        if not on:
            return self._on_stop(command, now)
        if self.playing:
            return [Change("/sequence/play", (1,))]
        changes = self._stop_wander()
        self.playing = True
        self._pending = None
        # Hold still until the tour starts (on the grid, if quantized); the first
        # step then morphs from here to the next keyframe of the tour.
        self._glide(self._anchor(now), now, 0.0)
        self._start = self._start_time(now)
        return [*changes, Change("/sequence/play", (1,))]

    def _on_stop(self, command: Command, now: float) -> list[Change]:
        if not self.playing:
            return [Change("/sequence/play", (0,))]
        self.playing = False
        self._pending = None
        self._glide(self._anchor(now), now, 0.0)
        return [Change("/sequence/play", (0,))]

    def _on_bpm(self, command: Command, now: float) -> list[Change]:
        self.tempo.set_bpm(float(command.args[0]), now)  # type: ignore[arg-type]
        return [Change("/tempo/bpm", (self.tempo.bpm,))]

    def _on_tap(self, command: Command, now: float) -> list[Change]:
        if command.args and float(command.args[0]) == 0.0:  # type: ignore[arg-type]
            return []  # a button release
        bpm = self.tempo.tap(command.received if command.received is not None else now)
        return [] if bpm is None else [Change("/tempo/bpm", (bpm,))]

    def _on_link(self, command: Command, now: float) -> list[Change]:
        self.tempo.link_wanted = bool(command.args[0])
        return [Change("/tempo/link", (int(self.tempo.following_link),))]


_SETTINGS = {
    "/keyframe/interp": "interp",
    "/keyframe/ease": "easing",
    "/keyframe/quantize": "quantize",
    "/keyframe/unit": "unit",
    "/keyframe/morph": "morph_time",
    "/sequence/length": "sequence_length",
    "/sequence/step": "sequence_step",
}


def _attribute_query(attribute: str) -> Callable[[PlayState, dict[str, int]], tuple[object, ...]]:
    return lambda state, path: (getattr(state, attribute),)


def _mix_query(name: str, i: int) -> Callable[[PlayState, dict[str, int]], tuple[object, ...]]:
    return lambda state, path: (state.mix[name][i],)


_HANDLERS = {
    "/latent/xy": PlayState._on_xy,
    "/latent/dir/{k}": PlayState._on_dir,
    "/latent/wander": PlayState._on_wander,
    "/latent/speed": PlayState._on_speed,
    "/latent/seed": PlayState._on_seed,
    "/latent/truncation": PlayState._on_truncation,
    "/latent/class": PlayState._on_class,
    **dict.fromkeys(
        [
            *(f"/style/{name}/{what}" for name in STYLE_RANGES for what in ("keyframe", "amount")),
            "/style/noise/mode",
            "/style/noise/strength",
        ],
        PlayState._on_style,
    ),
    **dict.fromkeys(
        [f"/transform/{what}" for what in ("rotate", "translate", "zoom", "spin", "reset")],
        PlayState._on_transform,
    ),
    "/keyframe/{n}/jump": PlayState._on_jump,
    "/keyframe/{n}/store": PlayState._on_store,
    "/keyframe/{n}/reshuffle": PlayState._on_reshuffle,
    "/keyframe/current": PlayState._on_current,
    "/keyframe/next": PlayState._on_step,
    "/keyframe/prev": PlayState._on_step,
    "/sequence/play": PlayState._on_play,
    "/sequence/stop": PlayState._on_stop,
    "/tempo/bpm": PlayState._on_bpm,
    "/tempo/tap": PlayState._on_tap,
    "/tempo/link": PlayState._on_link,
    **dict.fromkeys(_SETTINGS, PlayState._on_setting),
}

_QUERIES = {
    "/latent/xy": lambda s, p: s.xy,
    "/latent/dir/{k}": lambda s, p: (s.amounts[p["k"] - 1],),
    "/latent/wander": lambda s, p: (int(s.wander),),
    "/latent/speed": lambda s, p: (s.wander_speed,),
    "/latent/seed": lambda s, p: (s.seed,),
    "/latent/truncation": lambda s, p: (s.truncation,),
    "/latent/class": lambda s, p: (s.label,),
    **{
        f"/style/{name}/{what}": _mix_query(name, i)
        for name in STYLE_RANGES
        for i, what in enumerate(("keyframe", "amount"))
    },
    "/style/noise/mode": lambda s, p: (s.noise_mode,),
    "/style/noise/strength": lambda s, p: (s.noise_strength,),
    "/transform/rotate": lambda s, p: (round(s.angle, 3),),
    "/transform/translate": lambda s, p: s.translate,
    "/transform/zoom": lambda s, p: (s.zoom,),
    "/transform/spin": lambda s, p: (s.spin,),
    "/model/info": lambda s, p: (
        s.space.arch,
        s.space.name,
        s.space.classes,
        int(s.space.transformable),
    ),
    "/keyframe/current": lambda s, p: (s.current,),
    "/sequence/play": lambda s, p: (int(s.playing),),
    "/tempo/bpm": lambda s, p: (s.tempo.bpm,),
    "/tempo/link": lambda s, p: (int(s.tempo.following_link),),
    "/tempo/beat": lambda s, p: (math.floor(s.tempo.beat_at(s._now)),),
    **{pattern: _attribute_query(attribute) for pattern, attribute in _SETTINGS.items()},
}
