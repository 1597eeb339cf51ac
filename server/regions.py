"""Per-region latents: how many regions split the canvas's width, and what each one shows.

Clock-driven state, like the mixer: the render thread applies `/canvas/regions`
and `/canvas/region/N/keyframe`, and asks `poses()` once a frame for each
region's pose, left to right, which models.regions paints into one wide
picture. A region holding keyframe 0 shows the live position (wander, XY,
directions, morphs: everything deck a plays); a region holding keyframe k
shows that keyframe as the live picture would (truncation, noise, transform),
so with every region on 0 the canvas is today's picture. A new keyframe is
reached over `seconds`, from whatever the region showed, with the deck's
interpolation and easing. Regions need a canvas the network paints itself
(`native`): on another fill a setting is kept, shows when the fill is native
again, and its sender is told so with an /error.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.latent_maths import ease
from models.latent_space import LatentSpace, Pose
from models.regions import between
from server.commands import MAX_REGIONS, Change, Command, CommandError, error
from server.play import PlayState

REGIONS_ADDRESS = "/canvas/regions"
KEYFRAME_PATTERN = "/canvas/region/{n}/keyframe"
LIVE = 0  # a region holding keyframe 0 shows the live position


def keyframe_address(n: int) -> str:
    """The address of region n's keyframe (1-based, left to right)."""
    return KEYFRAME_PATTERN.replace("{n}", str(n))


@dataclass(frozen=True)
class _Morph:
    """A region on its way to a new keyframe: from `source` (a fixed pose) over `seconds`."""

    source: Pose
    start: float
    seconds: float


class Regions:
    """The regions' state; the render thread is its only user."""

    def __init__(self) -> None:
        self.count = 1  # 1: off, the canvas shows one pose
        self.holds = [LIVE] * MAX_REGIONS  # the keyframe each region holds, region 1 first
        self._morphs: dict[int, _Morph] = {}  # 0-based region -> morph in progress
        self._shown: list[Pose | None] = [None] * MAX_REGIONS  # each region's last pose
        self._space: LatentSpace | None = None  # the space those poses live in

    def active(self) -> bool:
        """Whether more than one region shows (the render takes `poses()`)."""
        return self.count > 1

    def apply(self, command: Command, now: float, *, fill: str, keyframes: int) -> list[Change]:
        """Apply one `/canvas/region*` command; the feedback to send.

        `fill`: the fill the canvas gets now (models.canvas.effective_fill);
        `keyframes`: how many keyframes the deck's bank holds.
        """
        if command.query:
            return [Change(command.address, self.query(command.name, command.path), command.origin)]
        # On a canvas the network does not paint, a setting is kept (a preset or the show
        # lands whatever the fill) and the sender hears why nothing shows yet.
        warning = [error(command, _not_native(fill))] if fill != "native" else []
        if command.name == REGIONS_ADDRESS:
            self.count = int(command.args[0])  # type: ignore[call-overload]
            return [Change(REGIONS_ADDRESS, (self.count,)), *(warning if self.count > 1 else [])]
        if command.name != KEYFRAME_PATTERN:
            raise CommandError(f"{command.address}: not a region command")
        n, k = command.index(), int(command.args[0])  # type: ignore[call-overload]
        if k > keyframes:
            return [error(command, f"keyframe {k} is out of range: the bank holds 1..{keyframes}")]
        seconds = float(command.args[1]) if len(command.args) > 1 else 0.0  # type: ignore[arg-type]
        shown = self._shown[n - 1]
        if seconds > 0.0 and shown is not None and k != self.holds[n - 1]:
            self._morphs[n - 1] = _Morph(source=shown, start=now, seconds=seconds)
        else:
            self._morphs.pop(n - 1, None)
        self.holds[n - 1] = k
        return [Change(command.address, (k,)), *warning]

    def query(self, name: str, path: dict[str, int]) -> tuple[object, ...]:
        """The current value of a region address: the count, or the keyframe region n holds."""
        if name == REGIONS_ADDRESS:
            return (self.count,)
        if name == KEYFRAME_PATTERN:
            return (self.holds[path["n"] - 1],)
        raise CommandError(f"{name}: not a region address")

    def poses(self, live: Pose, play: PlayState, now: float) -> list[Pose]:
        """Each shown region's pose this frame, left to right (`count` of them)."""
        if play.space is not self._space:  # another model: what showed is from another space
            self._space = play.space
            self._morphs.clear()
            self._shown = [None] * MAX_REGIONS
        centre = play.space.mean if play.space.name == "w" else None  # slerp about w_avg
        poses = []
        for i in range(self.count):
            k = self.holds[i]
            target = live if k == LIVE or k > play.bank.shape[0] else play.keyframe_pose(k)
            morph = self._morphs.get(i)
            if morph is not None:
                t = ease(play.easing, (now - morph.start) / morph.seconds)
                if t >= 1.0:
                    del self._morphs[i]
                else:
                    target = between(morph.source, target, t, mode=play.interp, centre=centre)
            self._shown[i] = target
            poses.append(target)
        return poses

    def settings(self) -> dict[str, list[object]]:
        """Every region value as address -> args, as the show keeps them."""
        values: dict[str, list[object]] = {REGIONS_ADDRESS: [self.count]}
        for n in range(1, MAX_REGIONS + 1):
            values[keyframe_address(n)] = [self.holds[n - 1]]
        return values

    def state(self) -> list[Change]:
        """Every region value, to greet a controller."""
        return [Change(address, tuple(args)) for address, args in self.settings().items()]


def _not_native(fill: str) -> str:
    return (
        f"kept, but regions show only on a canvas the network paints itself "
        f"(/canvas/fill native); this one is framed by {fill}"
    )
