"""The projector rig: every named output's mapping and the test card, set by commands.

The `/out/NAME/...` and `/output/testcard` commands arrive on the render
thread (the engine hands them to the outputs service); the pages' HTTP routes
and the show saver read from the event loop. The mappings are frozen values in
a dict that is replaced whole under a lock, so a reader always sees one
consistent rig. A command that would break a mapping (folded corners, a blend
wider than the slice, an unknown name) is refused with `/error` and the output
keeps its last good mapping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace

from server.commands import MAX_OUTPUTS, Change, Command, error
from server.outputs.mapping import (
    BLACK_RANGE,
    BRIGHTNESS_RANGE,
    MappingError,
    OutputMapping,
    check_blend,
    check_corners,
    check_gamma,
    check_mask,
    check_mesh,
    check_rect,
    mesh_grid,
)

TESTCARD = "/output/testcard"
MESH_POINT = "/out/{name}/mesh/{n}"


def mapping_changes(mapping: OutputMapping) -> list[Change]:
    """An output's whole state as feedback: what a page or a tablet needs to draw it."""
    base = f"/out/{mapping.name}"
    return [
        Change(f"{base}/add", ()),
        Change(f"{base}/rect", mapping.rect),
        Change(f"{base}/corners", tuple(v for point in mapping.corners for v in point)),
        Change(f"{base}/mesh", mesh_args(mapping)),
        Change(f"{base}/mask", tuple(v for point in mapping.mask for v in point)),
        Change(f"{base}/blend", mapping.blend),
        Change(f"{base}/gamma", (mapping.gamma,)),
        Change(f"{base}/brightness", (mapping.brightness,)),
        Change(f"{base}/black", (mapping.black,)),
        Change(f"{base}/ndi", (int(mapping.ndi),)),
    ]


def mesh_args(mapping: OutputMapping) -> tuple[float, ...]:
    """The mesh as feedback: rows, cols, then x y of each point row by row; () for none."""
    if not mapping.mesh:
        return ()
    points = tuple(v for row in mapping.mesh for point in row for v in point)
    return (len(mapping.mesh), len(mapping.mesh[0]), *points)


class OutputRig:
    """Named output mappings and the test card switch; thread-safe."""

    def __init__(
        self,
        outputs: Iterable[OutputMapping] = (),
        *,
        on_change: Callable[[OutputRig], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._outputs: dict[str, OutputMapping] = {m.name: m for m in outputs}
        self.testcard = False
        self.version = 0  # bumped on every change: pages and NDI senders poll it cheaply
        self._listeners: list[Callable[[OutputRig], None]] = [on_change] if on_change else []

    def listen(self, listener: Callable[[OutputRig], None]) -> None:
        """Call `listener(rig)` after every change (any thread: keep it short)."""
        self._listeners.append(listener)

    @property
    def outputs(self) -> dict[str, OutputMapping]:
        """The mappings now, by name (a copy)."""
        with self._lock:
            return dict(self._outputs)

    def get(self, name: str) -> OutputMapping | None:
        """One output's mapping, or None."""
        with self._lock:
            return self._outputs.get(name)

    def to_json(self) -> list[dict[str, object]]:
        """Every output, as the show file keeps them."""
        return [m.to_json() for m in self.outputs.values()]

    def replace_all(self, outputs: Iterable[OutputMapping]) -> list[Change]:
        """A new set of outputs (a show import); the feedback that tells every page."""
        new = {m.name: m for m in outputs}
        with self._lock:
            gone = [name for name in self._outputs if name not in new]
            self._outputs = new
        self._changed()
        changes = [Change(f"/out/{name}/remove", ()) for name in gone]
        for mapping in new.values():
            changes.extend(mapping_changes(mapping))
        return changes

    def apply(self, command: Command) -> list[Change]:
        """A `/out/NAME/...` or `/output/testcard` command: the changes, or an /error."""
        if command.name == TESTCARD:
            if not command.query:
                self.testcard = bool(command.args[0])
                self._changed()
                return [Change(TESTCARD, (int(self.testcard),))]
            return [Change(TESTCARD, (int(self.testcard),), command.origin)]
        name = command.label()
        key = "point" if command.name == MESH_POINT else command.name.rsplit("/", 1)[1]
        try:
            return self._apply(command, name, key)
        except MappingError as exc:
            return [error(command, f"{exc}; {name} keeps its last good mapping")]

    def _apply(self, command: Command, name: str, key: str) -> list[Change]:
        with self._lock:
            current = self._outputs.get(name)
            if key == "add":
                if current is not None:
                    return [error(command, f"output {name!r} exists already")]
                if len(self._outputs) >= MAX_OUTPUTS:
                    return [error(command, f"at most {MAX_OUTPUTS} outputs")]
                added = OutputMapping(name=name)
                self._outputs = {**self._outputs, name: added}
                changes = mapping_changes(added)
            elif current is None:
                known = ", ".join(sorted(self._outputs)) or "none yet: /out/NAME/add makes one"
                return [error(command, f"no output named {name!r} (outputs: {known})")]
            elif key == "remove":
                self._outputs = {k: v for k, v in self._outputs.items() if k != name}
                changes = [Change(command.address, ())]
            elif key == "point":
                changes = self._point(command, name, current)
                if command.query:
                    return changes
            elif command.query:
                state = {c.address: c.args for c in mapping_changes(current)}
                return [Change(command.address, state[command.address], command.origin)]
            else:
                updated = self._updated(current, key, command.args)
                self._outputs = {**self._outputs, name: updated}
                changes = [c for c in mapping_changes(updated) if c.address == command.address]
        self._changed()
        return changes

    def _point(self, command: Command, name: str, current: OutputMapping) -> list[Change]:
        """`/out/NAME/mesh/N x y` (under the lock): one mesh point moved, or an /error."""
        n = command.index() - 1
        cols = len(current.mesh[0]) if current.mesh else 0
        if n >= len(current.mesh) * cols:
            size = f"{len(current.mesh)} x {cols}" if current.mesh else "none: /out/NAME/mesh 3 3"
            raise MappingError(f"mesh point {n + 1}: {name}'s mesh has no such point (mesh {size})")
        r, c = divmod(n, cols)
        if command.query:
            return [Change(command.address, current.mesh[r][c], command.origin)]
        rows = [list(row) for row in current.mesh]
        rows[r][c] = (float(command.args[0]), float(command.args[1]))  # type: ignore[arg-type]
        mesh = check_mesh(rows)
        self._outputs = {**self._outputs, name: replace(current, mesh=mesh)}
        return [Change(command.address, mesh[r][c])]

    @staticmethod
    def _updated(current: OutputMapping, key: str, args: tuple[object, ...]) -> OutputMapping:
        if key == "rect":
            return replace(current, rect=check_rect(args))
        if key == "corners":
            return replace(current, corners=check_corners(args))
        if key == "mesh":
            if not args:
                return replace(current, mesh=())
            if len(args) != 2:
                raise MappingError("mesh: give rows and cols (2..8 each), or nothing to clear it")
            rows, cols = (int(v) for v in args)  # type: ignore[call-overload]
            return replace(current, mesh=mesh_grid(rows, cols, current.corners))
        if key == "mask":
            return replace(current, mask=check_mask(args))
        if key == "blend":
            return replace(current, blend=check_blend(args))
        if key == "gamma":
            return replace(current, gamma=check_gamma(args[0]))
        if key == "brightness":
            level = float(args[0])  # type: ignore[arg-type]
            if not BRIGHTNESS_RANGE[0] <= level <= BRIGHTNESS_RANGE[1]:
                raise MappingError(f"brightness {level:g} out of range")
            return replace(current, brightness=level)
        if key == "black":
            level = float(args[0])  # type: ignore[arg-type]
            if not BLACK_RANGE[0] <= level <= BLACK_RANGE[1]:
                raise MappingError(f"black {level:g} out of range")
            return replace(current, black=level)
        if key == "ndi":
            return replace(current, ndi=bool(args[0]))
        raise MappingError(f"/out/NAME/{key} is not an output setting")

    def _changed(self) -> None:
        with self._lock:
            self.version += 1
        for listener in self._listeners:
            listener(self)
