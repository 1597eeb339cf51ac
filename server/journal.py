"""The write-ahead journal: every applied command batch, on disk before the next frame.

A restart (a worker killed and started again by the supervisor) replays it on
top of the last show snapshot, so nothing a performer saw acknowledged is lost.

The lines are the performance log's (server/outputs/perflog.py): one JSON
object per line, a `start` line, then one `frame` line per frame that applied
commands, `{"type": "frame", "i": 12, "t": 3.1, "batches": [[[address, args,
received], ...], ...]}`. A frame line may also carry `"snapshot": {model:
entry}`: every deck's model's show entry just after a keyframe store or
reshuffle, whose result (the position at that instant, a random draw)
replaying the command could not rebuild; and `"presets": {name: preset or
null}` after a preset store or delete, for the same reason (a store keeps the
values of its instant).

Durability, per frame batch: each line is written and flushed to the kernel
on the render thread, after the batch is applied and before the frame renders
(so before any answer goes out). That survives kill -9, a segfault and an
out-of-memory kill: the kernel holds the data. There is no fsync per frame (it
costs milliseconds on a disk, every frame); a power cut may lose the seconds
since the last rotation or show save, both of which are fsynced.

Bounded and rotated: when a show snapshot is saved, the lines it covers are
folded into one line of what the snapshot does not hold (the model, the
master, the position), written to a temp file, fsynced and renamed over the
journal. A journal past MAX_BYTES is folded the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.commands import REGISTRY, Command, CommandError, lookup, parse
from server.presets import PresetError, check_name, check_preset

logger = logging.getLogger(__name__)

VERSION = 1
# Limits
MAX_BYTES = 4 * 1024 * 1024  # folded past this (a fader flood for many minutes)
MAX_LINE_BYTES = 1024 * 1024  # a longer line is not one we wrote

# Replaying these would do something again rather than restore a state.
NOT_REPLAYED = frozenset(
    {
        "/record/start",
        "/record/stop",
        "/react/trigger",
        "/react/stop",
        "/tempo/tap",
        "/feedback/subscribe",
        "/midi/learn",
    }
)
# Their result is in the line's snapshot, not in the command.
BANK_CHANGES = frozenset({"/keyframe/{n}/store", "/keyframe/{n}/reshuffle"})
# Their result is in the line's presets: a store keeps the values of its instant, and a
# replay comes after the fold (the last value per address), so it would store others.
PRESET_CHANGES = frozenset({"/preset/store", "/preset/delete"})
# Relative steps: replayed in order, but a fold cannot keep "the last one".
RELATIVE = frozenset({"/keyframe/next", "/keyframe/prev"})


def command_data(command: Command) -> list[Any]:
    """[address, args, received]: enough to parse it again (the performance log's form)."""
    return [command.address, ["?"] if command.query else list(command.args), command.received]


@dataclass
class Recovery:
    """What a journal holds on top of the show file."""

    commands: list[list[Any]] = field(default_factory=list)  # [address, args], in order
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> show entry
    model: str | None = None  # the last model loaded
    # name -> the preset as stored (JSON), or None: deleted; in the order they happened.
    presets: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was dropped, and why

    def apply_presets(self, presets: dict[str, dict[str, Any]]) -> None:
        """Bring a show's presets (name -> JSON) up to what the journal saw stored."""
        for name, preset in self.presets.items():
            if preset is None:
                presets.pop(name, None)
            else:
                presets[name] = preset

    def holds(self) -> bool:
        """Whether there is anything to carry over."""
        return bool(self.commands or self.snapshots or self.model or self.presets)

    def batch(self) -> list[Command]:
        """The commands to replay, parsed; one that no longer parses is noted and left out."""
        batch = []
        for address, args in self.commands:
            try:
                batch.append(parse(address, args))
            except CommandError as exc:
                self.notes.append(f"journal: {address} not replayed: {exc}")
        return batch


def fold(lines: Iterable[dict[str, Any]], *, covered: bool = False) -> Recovery:
    """The state a run of frame lines leaves: the last value per address, in order.

    `covered`: a saved show snapshot holds these lines' keyframes and patch, so
    only what a show does not keep is folded.
    """
    entries: list[tuple[str, list[Any]]] = []
    recovery = Recovery()
    for line in lines:
        snapshot = line.get("snapshot")
        if isinstance(snapshot, dict) and not covered:
            recovery.snapshots.update(snapshot)
        # Kept even where a show save covers them: the show's presets are saved apart
        # from its snapshot, and setting a preset again to what it holds changes nothing.
        _fold_presets(line.get("presets"), recovery)
        for batch in line.get("batches", ()):
            for address, args, *_ in batch:
                try:
                    command = parse(address, args)
                except CommandError:
                    continue  # the registry moved on; noted when the batch is parsed
                name = command.name
                if (
                    args == ["?"]
                    or name in NOT_REPLAYED
                    or name in BANK_CHANGES
                    or name in PRESET_CHANGES
                ):
                    continue
                owner = REGISTRY[name].owner
                if covered and owner == "patch":
                    continue
                if name == "/model/load" and command.deck == "a":
                    recovery.model = str(args[0])
                    # What deck a played before belonged to the previous model; its
                    # snapshot (saved on the switch) holds it. Deck b's is its own.
                    entries = [
                        e
                        for e in entries
                        if REGISTRY[_name(e[0])].owner != "play" or _deck(e[0]) != "a"
                    ]
                    continue
                entries.append((address, list(args)))
    kept: list[tuple[str, list[Any]]] = []
    seen: set[str] = set()
    for address, args in reversed(entries):
        name = _name(address)
        if name in RELATIVE and covered:
            continue
        # A patch command's meaning depends on its arguments (a route per target).
        key = address if REGISTRY[name].owner != "patch" and name not in RELATIVE else ""
        if key and key in seen:
            continue
        seen.add(key)
        kept.append((address, args))
    recovery.commands = [[address, args] for address, args in reversed(kept)]
    return recovery


def _fold_presets(presets: object, recovery: Recovery) -> None:
    """A line's presets into the recovery; one that is not a valid preset is noted and left."""
    if not isinstance(presets, dict):
        return
    for name, data in presets.items():
        try:
            check_name(name)
            if data is not None:
                check_preset(data, f"journal preset {name}")
        except PresetError as exc:
            recovery.notes.append(f"journal: preset not restored: {exc}")
            continue
        recovery.presets.pop(name, None)  # the newest last, as they happened
        recovery.presets[name] = data


def _is_name(name: object) -> bool:
    """A preset name the bank could hold (a refused store changed nothing to keep)."""
    try:
        check_name(str(name))
    except PresetError:
        return False
    return True


def _name(address: str) -> str:
    return lookup(address)[0].pattern


def _deck(address: str) -> str:
    """The deck an address plays on: `/deck/X/...`, or a bare address (deck a)."""
    parts = address.split("/")
    return parts[2] if len(parts) > 3 and parts[1] == "deck" else "a"


def read(path: Path) -> tuple[Recovery, int]:
    """What the journal at `path` holds; (empty, 0) if there is none.

    A cut last line (the worker died writing it) is ignored and noted. A
    journal that is corrupt or from a newer ganvj is dropped whole, noted, and
    kept beside as `.bad`: the show snapshot is the start.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES * 2)
    except FileNotFoundError:
        return Recovery(), 0
    except OSError as exc:
        return Recovery(
            notes=[f"journal {path}: cannot read it ({exc}); starting from the show"]
        ), 0
    texts = raw.split(b"\n")
    notes: list[str] = []
    if texts and texts[-1]:
        notes.append(
            f"journal {path.name}: its last record was cut (the worker died writing it); ignored"
        )
    texts = [t for t in texts[:-1]]
    frames: list[dict[str, Any]] = []
    try:
        if not texts:
            raise ValueError("no start line")
        for number, text in enumerate(texts, 1):
            try:
                line = json.loads(text)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"line {number} is not JSON ({exc})") from exc
            if not isinstance(line, dict):
                raise ValueError(f"line {number} is not an object")
            if number == 1:
                if line.get("type") != "start":
                    raise ValueError("the first line is not a start line")
                version = line.get("version")
                if not isinstance(version, int) or version > VERSION:
                    raise ValueError(f"written by a newer ganvj (version {version!r} > {VERSION})")
                continue
            if line.get("type") != "frame" or not _well_formed(line):
                raise ValueError(f"line {number} is not a frame line")
            frames.append(line)
    except ValueError as exc:
        dropped = max(len(texts) - 1, 0)
        message = (
            f"journal {path}: {exc}; starting from the show snapshot; dropped {dropped} "
            f"records (kept as {path.name}.bad)"
        )
        _keep_bad(path)
        return Recovery(notes=[*notes, message]), 0
    recovery = fold(frames)
    recovery.notes[:0] = notes
    return recovery, sum(len(b) for f in frames for b in f.get("batches", ()))


def _well_formed(line: dict[str, Any]) -> bool:
    batches = line.get("batches", [])
    if not isinstance(batches, list):
        return False
    for batch in batches:
        if not isinstance(batch, list):
            return False
        for entry in batch:
            if not (
                isinstance(entry, list)
                and len(entry) >= 2
                and isinstance(entry[0], str)
                and isinstance(entry[1], list)
            ):
                return False
    snapshot, presets = line.get("snapshot"), line.get("presets")
    return (snapshot is None or isinstance(snapshot, dict)) and (
        presets is None or isinstance(presets, dict)
    )


def _keep_bad(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".bad"))


class Journal:
    """Appends applied batches (render thread); folds itself when a show save covers them."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.error: str | None = None
        self.lines = 0
        self.rotations = 0
        self._lock = threading.Lock()
        # No file stays open between frames: an open handle would keep the state
        # folder busy (a disk that must turn read-only, an unmount) and buys nothing,
        # since every line is flushed to the kernel at once anyway.
        self._ready = False  # begun and not closed: lines may be appended
        self._size = 0
        self._frames: list[tuple[int, str]] = []  # (frame index, line) since the last fold
        self._skip: list[Sequence[Command]] = []
        self._closed = False

    def begin(self, recovery: Recovery, skip: Sequence[Sequence[Command]]) -> None:
        """Start a fresh journal holding what was recovered.

        `skip`: batches submitted at start that are not logged again: the replay
        (in the first line already) and what the show file itself restores.
        """
        self._skip = list(skip)
        first: list[str] = []
        if recovery.holds():
            first.append(_fold_line(recovery))
        with self._lock:
            self._rewrite(first)
            self._frames = [(0, line) for line in first]

    def append(
        self,
        index: int,
        now: float,
        batches: Sequence[Sequence[Command]],
        snapshot: Callable[[], dict[str, dict[str, Any]]],
        presets: Callable[[], dict[str, dict[str, Any]]] | None = None,
    ) -> None:
        """Write the batches applied before frame `index` and flush (render thread).

        `snapshot`: every deck's show entry by model (asked after a keyframe store);
        `presets`: every stored preset as JSON (asked after a preset store or delete).
        """
        data = [
            [command_data(c) for c in batch if not c.query]
            for batch in batches
            if not any(batch is skipped for skipped in self._skip)
        ]
        data = [b for b in data if b]
        if not data:
            return
        line: dict[str, Any] = {"type": "frame", "i": index, "t": round(now, 4), "batches": data}
        if any(c.name in BANK_CHANGES and not c.query for b in batches for c in b):
            line["snapshot"] = snapshot()
        touched = [
            str(c.args[0])
            for b in batches
            for c in b
            if c.name in PRESET_CHANGES and not c.query and c.args and _is_name(c.args[0])
        ]
        if touched and presets is not None:
            bank = presets()
            line["presets"] = {name: bank.get(name) for name in touched}
        text = json.dumps(line, separators=(",", ":"), allow_nan=False)
        with self._lock:
            if not self._ready:
                return
            try:
                # Written and closed: in the kernel, so it survives the process.
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(text + "\n")
            except OSError as exc:
                self._failed(exc)
                return
            self._size += len(text) + 1
            self._frames.append((index, text))
            self.lines += 1
            if self._size > self.max_bytes:
                self._fold(covered_to=None)

    def covered(self, index: int) -> None:
        """A show snapshot taken at frame `index` is on disk: fold what it covers (any thread)."""
        with self._lock:
            if self._closed:
                return  # a save that landed as the server stopped: folded at the next start
            self._fold(covered_to=index)

    def close(self) -> None:
        """Close the file (shutdown); a fold asked for later does nothing."""
        with self._lock:
            self._closed = True
            self._ready = False

    def status(self) -> dict[str, Any]:
        """For /api/status."""
        return {
            "path": str(self.path),
            "bytes": self._size,
            "lines": self.lines,
            "rotations": self.rotations,
            "error": self.error,
        }

    def _fold(self, covered_to: int | None) -> None:
        if covered_to is None:
            old, keep = self._frames, []
            carried = fold((json.loads(t) for _, t in old), covered=False)
        else:
            old = [f for f in self._frames if f[0] <= covered_to]
            keep = [f for f in self._frames if f[0] > covered_to]
            if not old:
                return
            carried = fold((json.loads(t) for _, t in old), covered=True)
        first = [_fold_line(carried)] if carried.holds() else []
        lines = first + [t for _, t in keep]
        if self._rewrite(lines):
            self._frames = [(0, t) for t in first] + keep
            self.rotations += 1

    def _rewrite(self, lines: list[str]) -> bool:
        """Replace the journal atomically: temp file, fsync, rename; then append to it."""
        start = json.dumps({"type": "start", "version": VERSION, "journal": True})
        text = "".join(f"{line}\n" for line in [start, *lines])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            self._ready = not self._closed
        except OSError as exc:
            self._failed(exc)
            return False
        self._size = len(text.encode())
        return True

    def _failed(self, exc: OSError) -> None:
        message = (
            f"journal {self.path}: {exc.strerror or exc}; "
            "changes since the last show save are at risk"
        )
        if message != self.error:
            logger.error("%s", message)
        self.error = message


def _fold_line(recovery: Recovery) -> str:
    """One frame line that rebuilds a folded run: the model, then the commands."""
    batch = ([["/model/load", [recovery.model], None]] if recovery.model else []) + [
        [address, args, None] for address, args in recovery.commands
    ]
    line: dict[str, Any] = {"type": "frame", "i": 0, "t": 0.0, "batches": [batch]}
    if recovery.snapshots:
        line["snapshot"] = recovery.snapshots
    if recovery.presets:
        line["presets"] = recovery.presets
    return json.dumps(line, separators=(",", ":"), allow_nan=False)
