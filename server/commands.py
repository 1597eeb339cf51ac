"""The control vocabulary: every command, defined once, validated at the edge.

OSC and websocket control both call `parse()`; what comes out is a `Command`
whose values are already checked, so the engine never sees a bad one. The OSC
reference (`docs/osc.md`), `GET /api/commands` and the TouchOSC layout are
generated from `REGISTRY`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from models.fills import FILLS
from models.names import is_model_name

ArgType = Literal["f", "i", "s"]
# Who applies a command: the latent state (server/play.py), the engine (reactions,
# models, thumbnails), the master grade (server/media/master.py), the modulation
# patch (server/patch.py), an output service (server/outputs: recording, NDI),
# the controller that received it (feedback subscriptions), or OSC access
# (pairings, applied on the event loop by the OSC edge, whichever transport sent them),
# or the engine's preset bank (server/presets.py).
Owner = Literal[
    "play", "engine", "master", "mixer", "patch", "outputs", "controller", "osc", "preset"
]
# Whether a model's show entry keeps the setting: always, or only for a model
# with a W space, classes, or StyleGAN3's input transform.
# "always", "w", "classes", "transform": kept in each model's show entry (for
# models of that kind); "show": kept once for the whole show (the loaded model,
# the master grade) and restored at the next start; "engine": kept in each
# model's show entry by the engine, only where not at rest (bends).
Persist = Literal["always", "w", "classes", "transform", "show", "engine"]

QUERY = "?"

# Limits
KEYFRAMES = 16  # keyframe slots in the bank, /keyframe/1 .. /keyframe/16
DIRECTIONS = 8  # direction faders, /latent/dir/1 .. /latent/dir/8
MAX_MORPH_SECONDS = 600.0
MAX_ADDRESS_CHARS = 128
MAX_STRING_CHARS = 256
MAX_SEED = 2**31 - 1
MIDI_KINDS = ("cc", "cc14", "note")
MAX_CLASS = 9999  # /latent/class; the model's own class count is checked when applied
MAX_OUTPUTS = 16  # named projector outputs, /out/NAME/...
MAX_MESH_SIDE = 8  # points along each side of an output's mesh warp (8 x 8 = 64 points)
MAX_MASK_POINTS = 16  # corners of an output's mask polygon
NAME_CHARS = r"[A-Za-z0-9_-]{1,32}"  # a {name} path part: an output's name
DECKS = ("a", "b")  # /deck/a/..., /deck/b/...; a bare deck address is deck a
MIX_CURVES = ("linear", "power", "cut")  # /mix/curve
BLEND_MODES = (
    "normal",
    "add",
    "screen",
    "multiply",
    "difference",
    "lighten",
    "darken",
    "lumakey",
)  # /mix/blend
MAX_FADE_BEATS = 64.0
STYLE_RANGES = ("coarse", "middle", "fine")  # style mixing layer ranges, /style/{range}/...
NOISE_MODES = ("const", "random", "none")  # /style/noise/mode, as synthesis() takes it


class CommandError(ValueError):
    """A message that is not a valid command; the message says why."""


@dataclass(frozen=True)
class ArgSpec:
    """One argument: its type, its range or choices, and whether it may be left out."""

    name: str
    type: ArgType
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False

    def describe(self) -> dict[str, object]:
        """A JSON-ready description."""
        out: dict[str, object] = {"name": self.name, "type": self.type, "doc": self.doc}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.choices:
            out["choices"] = list(self.choices)
        out["optional"] = self.optional
        return out

    def signature(self) -> str:
        """A compact human form, e.g. `seconds:f 0..600` or `[mode:s lerp|slerp]`."""
        text = f"{self.name}:{self.type}"
        if self.choices:
            text += " " + "|".join(self.choices)
        elif self.min is not None and self.max is not None:
            text += f" {_num(self.min)}..{_num(self.max)}"
        return f"[{text}]" if self.optional else text

    def check(self, value: object, where: str) -> object:
        """The value converted to this type, or CommandError."""
        # bool is an int subclass: a JSON true must not become 1.
        if self.type == "s":
            if not isinstance(value, str):
                raise CommandError(f"{where}: expected a string, got {_kind(value)}")
            if len(value) > MAX_STRING_CHARS:
                raise CommandError(f"{where}: string longer than {MAX_STRING_CHARS} characters")
            if self.choices and value not in self.choices:
                raise CommandError(f"{where}: {value!r} is not one of {', '.join(self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CommandError(f"{where}: expected a number, got {_kind(value)}")
        try:
            number = float(value)
        except OverflowError:  # a JSON integer such as 10**400 has no float
            raise CommandError(f"{where}: a number too large (over 1.8e308)") from None
        if not math.isfinite(number):
            raise CommandError(f"{where}: {value!r} is not a finite number")
        if self.type == "i":
            # TouchOSC buttons and toggles send floats 0.0/1.0: accept whole floats.
            if number != int(number):
                raise CommandError(f"{where}: expected a whole number, got {value!r}")
            converted: float | int = int(number)
        else:
            converted = number
        if (self.min is not None and number < self.min) or (
            self.max is not None and number > self.max
        ):
            raise CommandError(
                f"{where}: {value!r} is out of range {_num(self.min)}..{_num(self.max)}"
            )
        return converted


@dataclass(frozen=True)
class CommandSpec:
    """One command: its address pattern, arguments, who handles it, and one line of doc."""

    pattern: str  # "/keyframe/{n}/jump": {n} is a 1-based index
    doc: str
    args: tuple[ArgSpec, ...] = ()
    path: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (lo, hi)
    # Path parts that are names, not indices ("/out/{name}/rect"): NAME_CHARS only.
    names: tuple[str, ...] = ()
    owner: Owner = "play"
    queryable: bool = True
    settable: bool = True  # False: a read-only value, only "?" is accepted
    # An absolute setter applied at one instant: only the last value per address
    # in a frame's batches matters, so a fader flood costs one application a frame.
    coalesce: bool = False
    persist: Persist | None = None  # kept in the show file, and when
    # Opens files, devices or URLs on the server's machine by name: only an admin
    # may send it (a websocket with the admin role; OSC from loopback or server.trusted).
    admin: bool = False
    # Belongs to a deck: also answers as /deck/a/<pattern> and /deck/b/<pattern>
    # (the bare address is deck a); see DECKS and parse().
    deck: bool = False

    def __post_init__(self) -> None:
        names = re.findall(r"\{(\w+)\}", self.pattern)
        if set(names) != set(self.path) | set(self.names) or set(self.path) & set(self.names):
            raise ValueError(f"{self.pattern}: path parts {names} do not match {self.path}")
        seen_optional = False
        for arg in self.args:
            if seen_optional and not arg.optional:
                raise ValueError(f"{self.pattern}: a required argument follows an optional one")
            seen_optional = seen_optional or arg.optional

    @property
    def regex(self) -> re.Pattern[str]:
        """The concrete addresses this pattern matches."""
        return _compile(self.pattern, self.names)

    def describe(self) -> dict[str, object]:
        """A JSON-ready description, for `GET /api/commands`."""
        return {
            "address": self.pattern,
            "doc": self.doc,
            "args": [arg.describe() for arg in self.args],
            "path": {
                **{name: {"min": lo, "max": hi} for name, (lo, hi) in self.path.items()},
                **{name: {"pattern": NAME_CHARS} for name in self.names},
            },
            "queryable": self.queryable,
            "settable": self.settable,
            "admin": self.admin,
            "deck": self.deck,
        }


@dataclass(frozen=True)
class Command:
    """A validated command: concrete address, its pattern, path indices, typed args."""

    address: str
    name: str
    path: dict[str, int]
    args: tuple[object, ...]
    query: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # name parts: {"name": "left"}
    # When the controller received it (monotonic seconds), for timing-sensitive
    # commands such as tap tempo; None when unknown.
    received: float | None = field(default=None, compare=False)
    # Where a query's answer goes (a controller's token, e.g. an OSC sender);
    # copied into the answering Change's `to`.
    origin: object = field(default=None, compare=False)
    deck: str = "a"  # the deck a deck command drives: "/deck/b/..." -> "b"; bare -> "a"

    def index(self, name: str = "n") -> int:
        """A path index, e.g. the keyframe number of `/keyframe/3/jump`."""
        return self.path[name]

    def label(self, name: str = "name") -> str:
        """A path name, e.g. the output of `/out/left/rect`."""
        return self.labels[name]


ERROR_ADDRESS = "/error"  # a Change to one origin: (address, message)


@dataclass(frozen=True)
class Change:
    """A state change to send as feedback; `to` None means every subscriber."""

    address: str
    args: tuple[object, ...]
    to: object = None


def error(command: Command, message: str) -> Change:
    """A refusal addressed to the command's sender only."""
    return Change(ERROR_ADDRESS, (command.address, message), command.origin)


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"{type(value).__name__} {value!r}"[:80]


def _compile(pattern: str, names: Collection[str] = ()) -> re.Pattern[str]:
    parts = re.split(r"(\{\w+\})", pattern)
    regex = "".join(
        (
            f"(?P<{part[1:-1]}>{NAME_CHARS if part[1:-1] in names else '[0-9]{1,4}'})"
            if part.startswith("{")
            else re.escape(part)
        )
        for part in parts
    )
    # fullmatch-like: `$` would also match before a trailing newline.
    return re.compile(f"^{regex}\\Z")


_SECONDS = ArgSpec(
    "seconds",
    "f",
    "morph time in the current unit (seconds or beats); default /keyframe/morph",
    min=0.0,
    max=MAX_MORPH_SECONDS,
    optional=True,
)
_KEYFRAME = {"n": (1, KEYFRAMES)}
_SWITCH = ArgSpec("on", "i", "1 on, 0 off", min=0, max=1)

_FRACTION = ("0..1", 0.0, 1.0)
_PRESET_NAME = ArgSpec("name", "s", "1..32 of A-Z a-z 0-9 _ -")
_OUT = ("name",)
_OUTPUT_COMMANDS = (
    CommandSpec(
        "/out/{name}/add",
        "Add a projector output called name (the whole canvas, unwarped, no blend); "
        "its page is /out/name",
        owner="outputs",
        names=_OUT,
        queryable=False,
    ),
    CommandSpec(
        "/out/{name}/remove",
        "Remove the output called name",
        owner="outputs",
        names=_OUT,
        queryable=False,
    ),
    CommandSpec(
        "/out/{name}/rect",
        "The output's slice of the canvas: left, top, width, height as fractions",
        tuple(ArgSpec(arg, "f", *_FRACTION) for arg in ("x", "y", "w", "h")),
        owner="outputs",
        names=_OUT,
        coalesce=True,
    ),
    CommandSpec(
        "/out/{name}/corners",
        "Corner-pin: where the slice's corners land on the output, TL TR BR BL, fractions "
        "of its frame (a convex quad; -1..2 reaches past the edges)",
        tuple(
            ArgSpec(f"{axis}{i}", "f", "-1..2", -1.0, 2.0)
            for i in range(1, 5)
            for axis in ("x", "y")
        ),
        owner="outputs",
        names=_OUT,
        coalesce=True,
    ),
    CommandSpec(
        "/out/{name}/mesh",
        "Mesh warp: a grid of rows x cols points (2..8 each) laid through the corner-pin, "
        "then moved one by one with /out/name/mesh/n; no numbers clears it (the corners pin)",
        (
            ArgSpec("rows", "i", "2..8", 2, MAX_MESH_SIDE, optional=True),
            ArgSpec("cols", "i", "2..8", 2, MAX_MESH_SIDE, optional=True),
        ),
        owner="outputs",
        names=_OUT,
    ),
    CommandSpec(
        "/out/{name}/mesh/{n}",
        "Move mesh point n (1 is top left, row by row) to x, y, fractions of the output's "
        "frame; a cell that would fold over itself is refused",
        (ArgSpec("x", "f", "-1..2", -1.0, 2.0), ArgSpec("y", "f", "-1..2", -1.0, 2.0)),
        path={"n": (1, MAX_MESH_SIDE * MAX_MESH_SIDE)},
        owner="outputs",
        names=_OUT,
        coalesce=True,
    ),
    CommandSpec(
        "/out/{name}/mask",
        "Mask: a polygon of 3..16 points x1 y1 x2 y2 ..., fractions of the output's frame, "
        "outside which the output is black; no numbers clears it",
        tuple(
            ArgSpec(f"{axis}{i}", "f", "-1..2", -1.0, 2.0, optional=True)
            for i in range(1, MAX_MASK_POINTS + 1)
            for axis in ("x", "y")
        ),
        owner="outputs",
        names=_OUT,
        coalesce=True,
    ),
    CommandSpec(
        "/out/{name}/blend",
        "Soft edge widths: left, right, top, bottom, as fractions of the output's own size",
        tuple(ArgSpec(arg, "f", *_FRACTION) for arg in ("l", "r", "t", "b")),
        owner="outputs",
        names=_OUT,
        coalesce=True,
    ),
    CommandSpec(
        "/out/{name}/gamma",
        "The display gamma the blend ramps add up to even light at",
        (ArgSpec("gamma", "f", "1..4", 1.0, 4.0),),
        owner="outputs",
        names=_OUT,
        coalesce=True,
    ),
    CommandSpec(
        "/out/{name}/brightness",
        "The output's brightness: 1 unchanged, 0 black",
        (ArgSpec("level", "f", "0..2", 0.0, 2.0),),
        owner="outputs",
        names=_OUT,
        coalesce=True,
    ),
    CommandSpec(
        "/out/{name}/black",
        "Black level lift outside the blend zones, to match the overlap's doubled black",
        (ArgSpec("level", "f", "0..0.5", 0.0, 0.5),),
        owner="outputs",
        names=_OUT,
        coalesce=True,
    ),
    CommandSpec(
        "/out/{name}/ndi",
        "Also send this output, warped on the server, as its own NDI source: 1 on, 0 off",
        (_SWITCH,),
        owner="outputs",
        names=_OUT,
    ),
)

COMMANDS: tuple[CommandSpec, ...] = (
    # Latent motion
    CommandSpec(
        "/latent/xy",
        "XY pad: bilinear blend of the corner keyframes 1 (0,0), 2 (1,0), 3 (0,1), 4 (1,1)",
        (ArgSpec("x", "f", "0..1", 0.0, 1.0), ArgSpec("y", "f", "0..1", 0.0, 1.0)),
        coalesce=True,
    ),
    CommandSpec(
        "/latent/dir/{k}",
        "Offset along direction k (the model's own directions, else an orthonormal set)",
        (ArgSpec("amount", "f", "-1..1, 0 is no offset", -1.0, 1.0),),
        path={"k": (1, DIRECTIONS)},
        coalesce=True,
        persist="always",
    ),
    CommandSpec(
        "/latent/wander",
        "Drift along a smooth endless loop: 1 on, 0 off",
        (_SWITCH,),
        persist="always",
    ),
    CommandSpec(
        "/latent/speed",
        "Wander speed: 1 is one loop in two minutes",
        (ArgSpec("speed", "f", "0..8", 0.0, 8.0),),
        coalesce=True,
        persist="always",
    ),
    CommandSpec(
        "/latent/seed",
        "Morph to the latent of this seed, NVIDIA's RandomState(seed).randn(z_dim) as in "
        "gen_images.py (mapped to W for a StyleGAN), with the default morph time",
        (ArgSpec("seed", "i", "0..2^31-1", 0, MAX_SEED),),
    ),
    CommandSpec(
        "/latent/truncation",
        "Truncation psi: StyleGAN pulls W toward w_avg, DCGAN scales z toward 0; "
        "1 unchanged, 0 the mean picture",
        (ArgSpec("psi", "f", "0..2", 0.0, 2.0),),
        coalesce=True,
        persist="always",
    ),
    CommandSpec(
        "/latent/class",
        "Class of a conditional model: seeds, reshuffles and wander use it, and the picture "
        "morphs to the current seed in that class",
        (ArgSpec("class", "i", "0..classes-1", 0, MAX_CLASS),),
        persist="classes",
    ),
    # Keyframes
    CommandSpec(
        "/keyframe/{n}/jump",
        "Morph to keyframe n (0 seconds: cut); quantized to beat or bar if set",
        (_SECONDS,),
        path=_KEYFRAME,
        queryable=False,
    ),
    CommandSpec(
        "/keyframe/{n}/store",
        "Store the current position in keyframe n",
        path=_KEYFRAME,
        queryable=False,
    ),
    CommandSpec(
        "/keyframe/{n}/reshuffle",
        "Replace keyframe n with the latent of a new random seed (the reply carries the seed)",
        path=_KEYFRAME,
        queryable=False,
    ),
    CommandSpec(
        "/keyframe/{n}/thumb",
        "Read only: version of keyframe n's thumbnail (the JPEG is GET /api/thumb/n)",
        path=_KEYFRAME,
        owner="engine",
        settable=False,
    ),
    CommandSpec(
        "/keyframe/progress",
        "Read only: the keyframe being morphed to (0: none) and how far the morph is, 0..1",
        owner="engine",
        settable=False,
    ),
    CommandSpec(
        "/keyframe/current",
        "The keyframe last jumped to (0: none); setting it jumps with the default morph",
        (ArgSpec("n", "i", f"1..{KEYFRAMES}", 1, KEYFRAMES),),
    ),
    CommandSpec(
        "/keyframe/next", "Morph to the next keyframe (wraps)", (_SECONDS,), queryable=False
    ),
    CommandSpec(
        "/keyframe/prev", "Morph to the previous keyframe (wraps)", (_SECONDS,), queryable=False
    ),
    CommandSpec(
        "/keyframe/morph",
        "Default morph time, in the current unit",
        (ArgSpec("time", "f", "0..600", 0.0, MAX_MORPH_SECONDS),),
        persist="always",
    ),
    CommandSpec(
        "/keyframe/unit",
        "Unit of morph and step times",
        (ArgSpec("unit", "s", "seconds or beats", choices=("seconds", "beats")),),
        persist="always",
    ),
    CommandSpec(
        "/keyframe/interp",
        "Interpolation: slerp keeps the norm, lerp is a straight line",
        (ArgSpec("mode", "s", "slerp or lerp", choices=("slerp", "lerp")),),
        persist="always",
    ),
    CommandSpec(
        "/keyframe/ease",
        "Easing of morphs",
        (ArgSpec("easing", "s", "", choices=("linear", "smooth", "exponential")),),
        persist="always",
    ),
    CommandSpec(
        "/keyframe/quantize",
        "Start jumps on the next beat or bar",
        (ArgSpec("grid", "s", "", choices=("off", "beat", "bar")),),
        persist="always",
    ),
    # Style (StyleGAN)
    *(
        CommandSpec(
            f"/style/{name}/keyframe",
            f"Style mixing: take the {name} layers from keyframe n (0: none); StyleGAN only",
            (ArgSpec("n", "i", f"0..{KEYFRAMES}", 0, KEYFRAMES),),
            persist="w",
        )
        for name in STYLE_RANGES
    ),
    *(
        CommandSpec(
            f"/style/{name}/amount",
            f"Style mixing: how much of the {name} layers comes from that keyframe",
            (ArgSpec("amount", "f", "0..1", 0.0, 1.0),),
            coalesce=True,
            persist="w",
        )
        for name in STYLE_RANGES
    ),
    CommandSpec(
        "/style/noise/mode",
        "Per-pixel noise: const (the same every frame), random (new every frame) or none",
        (ArgSpec("mode", "s", "", choices=NOISE_MODES),),
        persist="w",
    ),
    CommandSpec(
        "/style/noise/strength",
        "Noise strength: 1 as trained, 0 none",
        (ArgSpec("strength", "f", "0..4", 0.0, 4.0),),
        coalesce=True,
        persist="w",
    ),
    # Transform (StyleGAN3)
    CommandSpec(
        "/transform/rotate",
        "Rotate the picture (StyleGAN3's input transform), degrees counter-clockwise",
        (ArgSpec("degrees", "f", "-180..180", -180.0, 180.0),),
        coalesce=True,
        persist="transform",
    ),
    CommandSpec(
        "/transform/translate",
        "Move the picture (StyleGAN3), in picture widths",
        (ArgSpec("x", "f", "-2..2", -2.0, 2.0), ArgSpec("y", "f", "-2..2", -2.0, 2.0)),
        coalesce=True,
        persist="transform",
    ),
    CommandSpec(
        "/transform/zoom",
        "Zoom the picture (StyleGAN3): above 1 magnifies",
        (ArgSpec("zoom", "f", "0.25..4", 0.25, 4.0),),
        coalesce=True,
        persist="transform",
    ),
    CommandSpec(
        "/transform/spin",
        "Keep rotating (StyleGAN3), degrees per second; 0 stops",
        (ArgSpec("speed", "f", "-180..180", -180.0, 180.0),),
        coalesce=True,
        persist="transform",
    ),
    CommandSpec(
        "/transform/reset",
        "Back to no rotation, translation, zoom or spin (StyleGAN3)",
        queryable=False,
    ),
    # Sequence
    CommandSpec(
        "/sequence/play",
        "Tour keyframes 1..length in order, looping (0 stops)",
        (ArgSpec("on", "i", "1 play (default), 0 stop", 0, 1, optional=True),),
    ),
    CommandSpec("/sequence/stop", "Stop the tour where it is", queryable=False),
    CommandSpec(
        "/sequence/length",
        "How many keyframes the tour visits",
        (ArgSpec("count", "i", f"1..{KEYFRAMES}", 1, KEYFRAMES),),
        persist="always",
    ),
    CommandSpec(
        "/sequence/step",
        "Time per step of the tour, in the current unit",
        (ArgSpec("time", "f", "0.05..600", 0.05, MAX_MORPH_SECONDS),),
        persist="always",
    ),
    # Tempo
    CommandSpec(
        "/tempo/bpm",
        "Tempo when Ableton Link is off",
        (ArgSpec("bpm", "f", "20..300", 20.0, 300.0),),
        persist="always",
    ),
    CommandSpec(
        "/tempo/tap",
        "Tap tempo; a 0 (button release) is ignored",
        (ArgSpec("press", "f", "TouchOSC button value", optional=True),),
        queryable=False,
    ),
    CommandSpec("/tempo/link", "Follow Ableton Link: 1 on, 0 off", (_SWITCH,)),
    CommandSpec(
        "/tempo/beat",
        "The current beat number (read only)",
        (ArgSpec("beat", "i", ""),),
        settable=False,
    ),
    # Reactions and models (handled by the engine)
    CommandSpec(
        "/react/trigger",
        "Start reacting to incoming video; after `seconds` fade back to latent play",
        (
            ArgSpec(
                "seconds",
                "f",
                "how long; 0 or none = until /react/stop",
                0.0,
                MAX_MORPH_SECONDS,
                optional=True,
            ),
        ),
        owner="engine",
        queryable=False,
    ),
    CommandSpec(
        "/react/stop",
        "Stop reacting, fading back to latent play",
        (),
        owner="engine",
        queryable=False,
    ),
    CommandSpec(
        "/react/mode",
        "What a reaction does with incoming video",
        (ArgSpec("mode", "s", "", choices=("pix2pix", "mirror", "feedback")),),
        owner="engine",
    ),
    CommandSpec(
        "/react/mix",
        "Blend of the reaction over the picture",
        (ArgSpec("mix", "f", "0..1", 0.0, 1.0),),
        owner="engine",
        coalesce=True,
    ),
    CommandSpec(
        "/react/smoothing",
        "Blend each output frame with the previous one (trails; calms a flickering input)",
        (ArgSpec("amount", "f", "0..0.99", 0.0, 0.99),),
        owner="engine",
        coalesce=True,
    ),
    CommandSpec(
        "/react/inject",
        "Feedback: share of fresh picture (camera, else the latent picture) fed into the loop",
        (ArgSpec("amount", "f", "0 = pure feedback .. 1", 0.0, 1.0),),
        owner="engine",
        coalesce=True,
    ),
    CommandSpec(
        "/react/source",
        "Incoming video: camera (the /camera page or a WHIP publisher, which go to the input "
        "that asked for them last), file:NAME (in the media folder), v4l2:/dev/videoN, "
        "ndi:NAME, or none",
        (ArgSpec("source", "s", "camera | file:NAME | v4l2:/dev/videoN | ndi:NAME | none"),),
        owner="engine",
        admin=True,
    ),
    CommandSpec(
        "/react/state",
        "Read only: reacting (0/1), the fade level 0..1, and why the last reaction ended",
        (),
        owner="engine",
        settable=False,
    ),
    CommandSpec(
        "/model/load",
        "Switch model by name, or by path for an admin (crossfade, never a black frame)",
        (ArgSpec("name", "s", "a model name from GET /api/models, or a file path (admin)"),),
        owner="engine",
        persist="show",
    ),
    # The canvas (render.size, render.fill)
    CommandSpec(
        "/canvas/fill",
        "How the model's picture fills the canvas: native (the network paints its shape), "
        "crop, fit (letterbox), stretch, mirror (mirrored tiles)",
        (ArgSpec("fill", "s", "", choices=FILLS),),
        owner="engine",
        persist="show",  # a performer's setting: the show keeps it over render.fill
    ),
    # Master output (the performer's only way to black)
    CommandSpec(
        "/output/dim",
        "Master fader: 1 full picture, 0 black",
        (ArgSpec("level", "f", "0..1", 0.0, 1.0),),
        owner="master",
        persist="show",
        coalesce=True,
    ),
    CommandSpec(
        "/output/blackout",
        "Fade to black (1) or back to the picture (0) over `seconds`",
        (
            _SWITCH,
            ArgSpec("seconds", "f", "fade time, default 0 (a cut)", 0.0, 60.0, optional=True),
        ),
        owner="master",
    ),
    CommandSpec(
        "/output/freeze",
        "Hold the picture (commands still apply, and show when it is released)",
        (_SWITCH,),
        owner="master",
    ),
    CommandSpec(
        "/output/strobe",
        "Strobe to black at this rate in Hz; 0 is off",
        (ArgSpec("rate", "f", "0..15 Hz", 0.0, 15.0),),
        owner="master",
    ),
    CommandSpec(
        "/output/hue",
        "Rotate hue, in turns: 0 and 1 are unchanged, 0.5 the opposite colours",
        (ArgSpec("turns", "f", "0..1", 0.0, 1.0),),
        owner="master",
        persist="show",
        coalesce=True,
    ),
    CommandSpec(
        "/output/saturation",
        "Colour saturation: 0 grey, 1 unchanged, 2 twice as vivid",
        (ArgSpec("amount", "f", "0..2", 0.0, 2.0),),
        owner="master",
        persist="show",
        coalesce=True,
    ),
    CommandSpec(
        "/output/contrast",
        "Contrast about mid grey: 0 flat grey, 1 unchanged, 2 twice as hard",
        (ArgSpec("amount", "f", "0..2", 0.0, 2.0),),
        owner="master",
        persist="show",
        coalesce=True,
    ),
    CommandSpec(
        "/output/invert",
        "Invert the colours: 1 on, 0 off",
        (_SWITCH,),
        owner="master",
        persist="show",
    ),
    # Modulation
    CommandSpec(
        "/mod/route",
        "Modulate a continuous command: its value + amount x source (0..1); amount 0 removes. "
        "Sources: audio/rms|bass|mid|high|onset, tempo/phase, tempo/bar",
        (
            ArgSpec("source", "s", "a source name, see /mod/sources"),
            ArgSpec("target", "s", "an address taking one float, e.g. /latent/truncation"),
            ArgSpec("amount", "f", "-10..10, in the target's own units", -10.0, 10.0),
        ),
        owner="patch",
    ),
    CommandSpec(
        "/mod/trigger",
        "An event source (audio/onset, tempo/beat, tempo/bar) fires a command; on 0 removes",
        (
            ArgSpec("source", "s", "audio/onset, tempo/beat or tempo/bar"),
            ArgSpec("target", "s", "an address needing no arguments, e.g. /keyframe/next"),
            ArgSpec("on", "i", "1 add (default), 0 remove", 0, 1, optional=True),
        ),
        owner="patch",
    ),
    CommandSpec("/mod/clear", "Remove every route and trigger", owner="patch", queryable=False),
    CommandSpec(
        "/mod/sources",
        "Read only: every modulation source and its value now (name, value, ...)",
        owner="patch",
        settable=False,
    ),
    # MIDI
    CommandSpec(
        "/midi/learn",
        "Map the next MIDI control moved (CC, or a note for a trigger) to this address; '' cancels",
        (ArgSpec("target", "s", "an address, e.g. /output/dim or /keyframe/3/jump"),),
        owner="patch",
    ),
    CommandSpec(
        "/midi/bind",
        "Map a MIDI control to an address ('' removes); learn sends this for you",
        (
            ArgSpec(
                "kind", "s", "cc (7-bit), cc14 (MSB 0..31, LSB +32) or note", choices=MIDI_KINDS
            ),
            ArgSpec("channel", "i", "1..16", 1, 16),
            ArgSpec("number", "i", "controller or note number 0..127", 0, 127),
            ArgSpec("target", "s", "an address, or '' to remove the mapping"),
        ),
        owner="patch",
    ),
    CommandSpec("/midi/clear", "Remove every MIDI mapping", owner="patch", queryable=False),
    # Outputs: recordings and where frames go (handled by server/outputs)
    CommandSpec(
        "/record/start",
        "Record the stream (no re-encode) and the performance log to state_dir/recordings",
        (
            ArgSpec(
                "name",
                "s",
                "file name without suffix; default set-DATE-TIME",
                optional=True,
            ),
        ),
        owner="outputs",
        queryable=False,
    ),
    CommandSpec("/record/stop", "Stop recording", (), owner="outputs", queryable=False),
    CommandSpec(
        "/record/state",
        "Read only: recording (0/1), the file name, and why the last recording stopped",
        (),
        owner="outputs",
        settable=False,
    ),
    CommandSpec(
        "/output/ndi",
        "Send the picture as an NDI source (Resolume, TouchDesigner, OBS): 1 on, 0 off",
        (_SWITCH,),
        owner="outputs",
    ),
    CommandSpec(
        "/output/testcard",
        "Show a test card (grid, circles, each output's name, edges and blend zones) "
        "on every projector output instead of the picture: 1 on, 0 off",
        (_SWITCH,),
        owner="outputs",
    ),
    *_OUTPUT_COMMANDS,
    CommandSpec(
        "/model/info",
        "Read only: architecture, latent space (z or w), classes (0: unconditional), "
        "and 1 if the picture can be rotated and moved (StyleGAN3)",
        (),
        settable=False,
    ),
    # Feedback
    CommandSpec(
        "/feedback/subscribe",
        "Send state changes to the sender's address at this port (default: its own port)",
        (ArgSpec("port", "i", "1..65535", 1, 65535, optional=True),),
        owner="controller",
        queryable=False,
    ),
    # OSC access: who may send OSC besides this machine and osc.allow
    CommandSpec(
        "/osc/allow",
        "Pair a host for OSC: its messages are accepted as a performer's (kept in state_dir)",
        (ArgSpec("host", "s", "an IP address, e.g. 10.0.0.23"),),
        owner="osc",
        queryable=False,
    ),
    CommandSpec(
        "/osc/deny",
        "Unpair a host: its OSC is refused again and its feedback subscriptions end",
        (ArgSpec("host", "s", "an IP address"),),
        owner="osc",
        queryable=False,
    ),
    CommandSpec(
        "/osc/paired",
        "Read only: the hosts paired for OSC (by /osc/allow, or by opening /control with the "
        "performer's link)",
        (),
        owner="osc",
        settable=False,
    ),
    CommandSpec(
        "/osc/refused",
        "Read only: hosts whose OSC was refused recently, each followed by how many "
        "messages it sent",
        (),
        owner="osc",
        settable=False,
    ),
    # Presets (M3, issue 20): named snapshots of every value, in the show file
    CommandSpec(
        "/preset/store",
        "Store every value now (decks, mixer, bends, blends, master, modulation, tempo) "
        "as a preset called name",
        (_PRESET_NAME,),
        owner="preset",
        queryable=False,
    ),
    CommandSpec(
        "/preset/recall",
        "Recall a preset: the latent position, continuous faders (a translate's x y too) and "
        "each canvas region's keyframe morph over `seconds` (default 0: a cut), the rest cuts",
        (
            _PRESET_NAME,
            ArgSpec("seconds", "f", "morph time in seconds", 0.0, MAX_MORPH_SECONDS, optional=True),
        ),
        owner="preset",
        queryable=False,
    ),
    CommandSpec(
        "/preset/delete", "Delete a preset", (_PRESET_NAME,), owner="preset", queryable=False
    ),
    CommandSpec(
        "/preset/list",
        "Read only: the stored presets' names, sorted",
        owner="preset",
        settable=False,
    ),
)

# -- Network bending and model blending (issue 20; engine-applied, per deck) -------------
BEND_LAYERS = 32  # /bend/1 .. /bend/32; a model's own count is checked when applied
BEND_CLUSTERS = 4  # channel clusters per layer, /bend/{layer}/cluster/1 .. /4
BLEND_GROUPS = ("coarse", "middle", "fine")  # synthesis layers cut in thirds
_BEND_OPS: tuple[tuple[str, str, tuple[ArgSpec, ...]], ...] = (
    (
        "rotate",
        "Rotate the feature maps counter-clockwise, degrees (0: none)",
        (ArgSpec("degrees", "f", "-180..180", -180.0, 180.0),),
    ),
    (
        "scale",
        "Scale the feature maps about their centre: above 1 magnifies (1: none)",
        (ArgSpec("factor", "f", "0.25..4", 0.25, 4.0),),
    ),
    (
        "translate",
        "Move the feature maps, in fractions of their width and height, y down (0 0: none)",
        (ArgSpec("x", "f", "-1..1", -1.0, 1.0), ArgSpec("y", "f", "-1..1", -1.0, 1.0)),
    ),
    ("flip", "Mirror the feature maps left to right: 1 on, 0 off", (_SWITCH,)),
    (
        "erode",
        "Erode: each value the minimum within this radius, in feature-map pixels (0: none)",
        (ArgSpec("px", "f", "0..8, rounded", 0.0, 8.0),),
    ),
    (
        "dilate",
        "Dilate: each value the maximum within this radius, in feature-map pixels (0: none)",
        (ArgSpec("px", "f", "0..8, rounded", 0.0, 8.0),),
    ),
    (
        "ablate",
        "Zero this fraction of the channels (always the same ones, a fixed shuffle; 0: none)",
        (ArgSpec("fraction", "f", "0..1", 0.0, 1.0),),
    ),
    (
        "gain",
        "Multiply the channels by this factor (1: none)",
        (ArgSpec("factor", "f", "0..4", 0.0, 4.0),),
    ),
)
_BEND_COMMANDS = (
    *(
        CommandSpec(
            f"/bend/{{layer}}/{op}",
            f"Network bending at synthesis layer N (see /api/models): {doc}",
            args,
            path={"layer": (1, BEND_LAYERS)},
            owner="engine",
            coalesce=True,
            persist="engine",
            deck=True,
        )
        for op, doc, args in _BEND_OPS
    ),
    *(
        CommandSpec(
            f"/bend/{{layer}}/cluster/{{k}}/{op}",
            f"Network bending of channel cluster K of layer N: {doc}",
            args,
            path={"layer": (1, BEND_LAYERS), "k": (1, BEND_CLUSTERS)},
            owner="engine",
            coalesce=True,
            persist="engine",
            deck=True,
        )
        for op, doc, args in _BEND_OPS
    ),
    CommandSpec("/bend/reset", "Remove every bend", owner="engine", queryable=False, deck=True),
    CommandSpec(
        "/blend/model",
        "Blend partner: a model of the same architecture and resolution, by name ('' none)",
        (ArgSpec("name", "s", "a model name from GET /api/models"),),
        owner="engine",
        deck=True,
    ),
    CommandSpec(
        "/blend/layers",
        "Move a group of synthesis layers toward the partner: 0 this model, 1 the partner",
        (
            ArgSpec("group", "s", "", choices=BLEND_GROUPS),
            ArgSpec("amount", "f", "0..1", 0.0, 1.0),
        ),
        owner="engine",
        queryable=False,
        deck=True,
    ),
    CommandSpec(
        "/blend/layer/{n}",
        "Move synthesis layer N toward the partner: 0 this model, 1 the partner",
        (ArgSpec("amount", "f", "0..1", 0.0, 1.0),),
        path={"n": (1, BEND_LAYERS)},
        owner="engine",
        coalesce=True,
        deck=True,
    ),
    CommandSpec(
        "/blend/mapping",
        "Move the mapping network toward the partner (StyleGAN; seeds mapped after it)",
        (ArgSpec("amount", "f", "0..1", 0.0, 1.0),),
        owner="engine",
        coalesce=True,
        deck=True,
    ),
    CommandSpec(
        "/blend/reset",
        "Back to this model's own weights, no partner",
        owner="engine",
        queryable=False,
        deck=True,
    ),
)
COMMANDS = (*COMMANDS, *_BEND_COMMANDS)
# -- end of bending and blending ------------------------------------------------------------

# -- Decks and the mixer (issue 20) ------------------------------------------
# Every command under these prefixes belongs to a deck: the registry answers it
# bare (deck a) and as /deck/a/... and /deck/b/...; a spec may also say deck=True.
_DECK_PREFIXES: tuple[str, ...] = ("/latent/", "/keyframe/", "/style/", "/transform/")
_DECK_PREFIXES += ("/sequence/", "/react/", "/model/")
_DECK_COMMANDS = (
    CommandSpec(
        "/dim",
        "This deck's fader before the mix (/deck/a/dim, /deck/b/dim): 1 full, 0 black",
        (ArgSpec("level", "f", "0..1", 0.0, 1.0),),
        owner="mixer",
        coalesce=True,
        persist="show",
        deck=True,
    ),
    CommandSpec(
        "/source",
        "Show incoming video on this deck instead of its model (/deck/b/source): camera "
        "(the /camera page or a WHIP publisher, moved here), file:NAME, v4l2:/dev/videoN, "
        "ndi:SOURCE NAME, or none (back to the model); its reaction (pix2pix, feedback) "
        "takes this video when it has no input of its own",
        (ArgSpec("source", "s", "camera | file:NAME | v4l2:/dev/videoN | ndi:NAME | none"),),
        owner="mixer",
        admin=True,
        deck=True,
    ),
)
_MIX_COMMANDS = (
    CommandSpec(
        "/mix/crossfade",
        "Crossfader: 0 all deck a, 1 all deck b",
        (ArgSpec("x", "f", "0..1", 0.0, 1.0),),
        owner="mixer",
        coalesce=True,
        persist="show",
    ),
    CommandSpec(
        "/mix/curve",
        "Crossfade curve: linear, power (equal power), cut (the nearer deck only)",
        (ArgSpec("curve", "s", "", choices=MIX_CURVES),),
        owner="mixer",
        persist="show",
    ),
    CommandSpec(
        "/mix/blend",
        "How deck b lays over deck a; lumakey keys b over a by b's brightness",
        (ArgSpec("mode", "s", "", choices=BLEND_MODES),),
        owner="mixer",
        persist="show",
    ),
    CommandSpec(
        "/mix/cut",
        "Cut to the other deck on the next beat (crossfade to 0 or 1)",
        owner="mixer",
        queryable=False,
    ),
    CommandSpec(
        "/mix/fade",
        "Fade to the other deck over `beats`, starting on the next beat",
        (ArgSpec("beats", "f", "0..64", 0.0, MAX_FADE_BEATS),),
        owner="mixer",
        queryable=False,
    ),
)
COMMANDS = (
    *(
        replace(spec, deck=True) if spec.pattern.startswith(_DECK_PREFIXES) else spec
        for spec in COMMANDS
    ),
    *_DECK_COMMANDS,
    *_MIX_COMMANDS,
)


# -- Per-region latents on a wide canvas (issue 19; engine-applied by server/regions.py) --
MAX_REGIONS = 4  # /canvas/region/1 .. /4, left to right (models.regions.MAX_REGIONS)
_REGION_COMMANDS = (
    CommandSpec(
        "/canvas/regions",
        "Regions across the canvas's width, each painting its own keyframe, joined by soft "
        "edges (native fill only): 1 off",
        (ArgSpec("count", "i", "1..4", 1, MAX_REGIONS),),
        owner="engine",
        persist="show",  # the canvas's layout: kept by the show, captured by presets
    ),
    CommandSpec(
        "/canvas/region/{n}/keyframe",
        "Region N (1 = leftmost) shows keyframe k, 0 the live position; reached over `seconds`",
        (
            ArgSpec("k", "i", "0..16, 0 the live position", 0, KEYFRAMES),
            ArgSpec(
                "seconds",
                "f",
                "morph time, default 0 (a cut)",
                0.0,
                MAX_MORPH_SECONDS,
                optional=True,
            ),
        ),
        path={"n": (1, MAX_REGIONS)},
        owner="engine",
        persist="show",
    ),
)
COMMANDS = (*COMMANDS, *_REGION_COMMANDS)
# -- end of per-region latents -----------------------------------------------------------


REGISTRY: dict[str, CommandSpec] = {spec.pattern: spec for spec in COMMANDS}

_FIXED = {spec.pattern: spec for spec in COMMANDS if not spec.path and not spec.names}
_PATTERNED = [(spec.regex, spec) for spec in COMMANDS if spec.path or spec.names]


def addresses(spec: CommandSpec) -> list[str]:
    """Every concrete address of a spec: `/latent/dir/{k}` -> `/latent/dir/1` .. `/8`.

    A spec with name parts (`/out/{name}/rect`) has no fixed list: none.
    """
    if spec.names:
        return []
    found = [spec.pattern]
    for name, (lo, hi) in spec.path.items():  # every combination of the path indices
        found = [a.replace("{" + name + "}", str(i)) for a in found for i in range(lo, hi + 1)]
    return found


def owned_by(owner: Owner) -> tuple[str, ...]:
    """The patterns this owner applies, in registry order."""
    return tuple(spec.pattern for spec in COMMANDS if spec.owner == owner)


def admin_only() -> frozenset[str]:
    """The patterns only an admin may send (the registry's `admin` flag), deck forms too."""
    return frozenset(
        form
        for spec in COMMANDS
        if spec.admin
        for form in (spec.pattern, *(deck_address(d, spec.pattern) for d in DECKS if spec.deck))
    )


def deck_address(deck: str, address: str) -> str:
    """A deck command's address on that deck: ("b", "/latent/seed") -> "/deck/b/latent/seed"."""
    return f"/deck/{deck}{address}"


def split_deck(address: str) -> tuple[str | None, str]:
    """("b", "/latent/seed") from "/deck/b/latent/seed"; (None, address) for a bare one.

    An unknown deck ("/deck/c/...") is a CommandError.
    """
    if not address.startswith("/deck/"):
        return None, address
    _, _, deck, *rest = address.split("/", 3)
    if deck not in DECKS:
        raise CommandError(f"{address[:80]}: unknown deck {deck[:16]!r}; the decks are a and b")
    if not rest or not rest[0]:
        raise CommandError(f"{address[:80]}: a deck address needs a command after it")
    return deck, "/" + rest[0]


def persisted(kinds: Collection[Persist]) -> tuple[str, ...]:
    """The addresses a show keeps for these kinds, grouped by kind ("show": show-wide)."""
    order: tuple[Persist, ...] = ("always", "w", "classes", "transform", "show", "engine")
    return tuple(
        address
        for kind in order
        if kind in kinds
        for spec in COMMANDS
        if spec.persist == kind
        for address in addresses(spec)
    )


def opens_by_path(address: str, args: Sequence[object]) -> bool:
    """Whether a command opens a file on the server by path: admin only, checked at the edge."""
    if address.startswith("/deck/"):
        try:
            address = split_deck(address)[1]
        except CommandError:
            return False  # refused by parse() anyway
    return address == "/model/load" and bool(args) and not is_model_name(str(args[0]))


# The show-wide settings, restored at start: the model and master grade, the mixer,
# and deck b's side of the deck ones (its model, its fader); a bare address is deck a's.
SHOW_SETTINGS = persisted({"show"}) + tuple(
    deck_address("b", address)
    for spec in COMMANDS
    if spec.persist == "show" and spec.deck
    for address in addresses(spec)
)


def lookup(address: str) -> tuple[CommandSpec, dict[str, int]]:
    """The spec for a concrete address (a deck form too) and its path indices, or CommandError."""
    spec, path, _, _ = _match(address)
    return spec, path


def _match(address: str) -> tuple[CommandSpec, dict[str, int], dict[str, str], str]:
    """The spec for a concrete address, its path indices, its path names and its deck."""
    if not isinstance(address, str):
        raise CommandError(f"address must be a string, got {_kind(address)}")
    if len(address) > MAX_ADDRESS_CHARS:
        raise CommandError(f"address longer than {MAX_ADDRESS_CHARS} characters")
    deck, bare = split_deck(address)
    spec, path, labels = _match_bare(bare)
    if deck is not None and not spec.deck:
        raise CommandError(f"{address[:80]}: {spec.pattern} is not a deck command")
    return spec, path, labels, deck or "a"


def _match_bare(address: str) -> tuple[CommandSpec, dict[str, int], dict[str, str]]:
    spec = _FIXED.get(address)
    if spec is not None:
        return spec, {}, {}
    for regex, candidate in _PATTERNED:
        match = regex.match(address)
        if match is None:
            continue
        path: dict[str, int] = {}
        for name, (lo, hi) in candidate.path.items():
            value = int(match.group(name))
            if not lo <= value <= hi:
                raise CommandError(f"{address}: {name}={value} is out of range {lo}..{hi}")
            path[name] = value
        return candidate, path, {name: match.group(name) for name in candidate.names}
    if address.startswith("/out/"):
        raise CommandError(
            f"unknown address {address[:80]!r}: an output's name is 1..32 of A-Z a-z 0-9 _ -"
        )
    raise CommandError(f"unknown address {address[:80]!r}")


def parse(
    address: str,
    args: Sequence[object],
    *,
    origin: object = None,
    received: float | None = None,
) -> Command:
    """Validate one message into a Command, or raise CommandError saying why."""
    spec, path, labels, deck = _match(address)
    if isinstance(args, str | bytes) or not isinstance(args, Sequence):
        raise CommandError(f"{address}: args must be a list, got {_kind(args)}")
    if len(args) == 1 and isinstance(args[0], str) and args[0] == QUERY:
        if not spec.queryable:
            raise CommandError(f"{address}: cannot be queried")
        return Command(
            address=address,
            name=spec.pattern,
            path=path,
            args=(),
            query=True,
            labels=labels,
            received=received,
            origin=origin,
            deck=deck,
        )
    if not spec.settable:
        raise CommandError(f"{address}: is read only; send '?' to query it")
    required = sum(1 for arg in spec.args if not arg.optional)
    if not required <= len(args) <= len(spec.args):
        expected = str(required) if required == len(spec.args) else f"{required}..{len(spec.args)}"
        raise CommandError(f"{address}: expected {expected} argument(s), got {len(args)}")
    values = tuple(
        arg.check(value, f"{address} {arg.name}")
        for arg, value in zip(spec.args, args, strict=False)
    )
    return Command(
        address=address,
        name=spec.pattern,
        path=path,
        args=values,
        labels=labels,
        received=received,
        origin=origin,
        deck=deck,
    )


def describe() -> list[dict[str, object]]:
    """Every command as JSON-ready data, for `GET /api/commands`."""
    return [spec.describe() for spec in COMMANDS]
