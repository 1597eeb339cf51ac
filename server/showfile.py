"""The show file: keyframe banks per model and settings, as JSON, written atomically.

A model's entry holds its keyframes in the space it is played in: z
(`"z_dim"`, the default) for a DCGAN, W (`"space": "w"`, `"w_dim"`) for a
StyleGAN, so `ganvj render tour --show` can draw exactly what was stored live.

A show survives a restart: the engine saves it after changes and loads it at
start. A file that cannot be read is reported and kept (a `.bad` copy), never
overwritten silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.keyframe_bank import MAX_FILE_BYTES, SHOW_VERSION, BankError, check_bank
from server.commands import CommandError, parse
from server.outputs.mapping import MappingError, check_outputs
from server.presets import PresetError, check_presets

logger = logging.getLogger(__name__)

VERSION = SHOW_VERSION
# Limits (a bank's own limits are in models.keyframe_bank)
MAX_MODELS = 256
MAX_PATCH = 512


class ShowFileError(ValueError):
    """A show file that cannot be used; the message says where and why."""


@dataclass
class Show:
    """Settings (address -> args) and, per model name, its PlayState snapshot."""

    settings: dict[str, list[object]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Modulation routes, triggers and MIDI mappings, as [address, args] commands.
    patch: list[list[Any]] = field(default_factory=list)
    # Projector outputs (server/outputs/mapping.py); None: the file has none, and
    # config.toml's [[outputs]] start the rig.
    outputs: list[dict[str, Any]] | None = None
    # Named presets (server/presets.py), as JSON: name -> {"commands", "positions"}.
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON document."""
        data: dict[str, Any] = {
            "version": VERSION,
            "settings": self.settings,
            "models": self.models,
            "patch": self.patch,
        }
        if self.outputs is not None:
            data["outputs"] = self.outputs
        if self.presets:
            data["presets"] = self.presets
        return data


def validate(data: object, where: str = "show file") -> Show:
    """A Show from parsed JSON, or ShowFileError naming the bad key."""
    if not isinstance(data, dict):
        raise ShowFileError(f"{where}: expected an object at the top level")
    if data.get("version") != VERSION:
        raise ShowFileError(f"{where}: version {data.get('version')!r} is not {VERSION}")
    settings = data.get("settings", {})
    if not isinstance(settings, dict) or not all(
        isinstance(k, str) and isinstance(v, list) for k, v in settings.items()
    ):
        raise ShowFileError(f"{where}: 'settings' must map addresses to argument lists")
    _check_settings(settings, f"{where}: settings")
    models = data.get("models", {})
    if not isinstance(models, dict) or len(models) > MAX_MODELS:
        raise ShowFileError(f"{where}: 'models' must be an object of at most {MAX_MODELS}")
    for name, model in models.items():
        try:
            check_bank(model, f"{where}: models.{name}")
        except BankError as exc:
            raise ShowFileError(str(exc)) from exc
        _check_settings(model.get("settings", {}), f"{where}: models.{name}.settings")
    patch = data.get("patch", [])
    if not isinstance(patch, list) or len(patch) > MAX_PATCH:
        raise ShowFileError(f"{where}: 'patch' must be a list of at most {MAX_PATCH} commands")
    for i, entry in enumerate(patch):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise ShowFileError(f"{where}: patch[{i}]: expected [address, [args]]")
        address, args = entry
        if not isinstance(address, str) or not address.startswith(("/mod/", "/midi/")):
            raise ShowFileError(f"{where}: patch[{i}]: {address!r} is not a /mod or /midi address")
        try:
            parse(address, args)
        except CommandError as exc:
            raise ShowFileError(f"{where}: patch[{i}]: {exc}") from exc
    outputs = None
    if "outputs" in data:
        try:
            outputs = [m.to_json() for m in check_outputs(data["outputs"], f"{where}: outputs")]
        except MappingError as exc:
            raise ShowFileError(str(exc)) from exc
    try:
        presets = {
            name: preset.to_json()
            for name, preset in check_presets(data.get("presets", {}), f"{where}: presets").items()
        }
    except PresetError as exc:
        raise ShowFileError(str(exc)) from exc
    return Show(
        settings=dict(settings),
        models=dict(models),
        patch=list(patch),
        outputs=outputs,
        presets=presets,
    )


def _check_settings(settings: dict[str, Any], where: str) -> None:
    """Every stored setting through the registry, so no bad value reaches the engine."""
    for address, args in settings.items():
        try:
            parse(address, args)
        except CommandError as exc:
            raise ShowFileError(f"{where}: {exc}") from exc


def loads(text: str, where: str = "show file") -> Show:
    """Parse and validate a show from JSON text (an import)."""
    try:
        data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer over Python's digit limit
        raise ShowFileError(f"{where}: not JSON: {exc}") from exc
    return validate(data, where)


def dumps(show: Show) -> str:
    """The show as JSON text (an export)."""
    return json.dumps(show.to_json(), allow_nan=False, separators=(",", ":"))


def load(path: Path) -> Show | None:
    """The show at `path`; None if there is none; a bad file is kept as `.bad` and raises."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ShowFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        _keep_bad(path)
        raise ShowFileError(f"{path}: not UTF-8 text: {exc}") from exc
    try:
        return loads(text, str(path))
    except ShowFileError:
        _keep_bad(path)
        raise


def save(path: Path, show: Show) -> None:
    """Write atomically: a temp file in the same folder, fsync, then rename over."""
    save_text(path, dumps(show))


def save_text(path: Path, text: str) -> None:
    """Write already-serialised show text atomically (the server serialises on its loop)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _keep_bad(path: Path) -> None:
    bad = path.with_name(path.name + ".bad")
    try:
        shutil.copy2(path, bad)
        logger.error("show file %s is unreadable; a copy is kept at %s", path, bad)
    except OSError as exc:
        logger.error("show file %s is unreadable and could not be copied: %s", path, exc)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class ShowSaver:
    """Writes the show file off the render thread, atomically, newest state only.

    A write that fails (disk full, read-only, folder gone, or anything else)
    keeps the show in memory, tells every controller once, shows in
    /api/status, and retries with a growing pause (RETRY_SECONDS doubling up to
    RETRY_MAX_SECONDS) until the write succeeds: the file on disk is never
    half-written (save_text renames a complete temp file over it) and nothing
    performed since is lost while the server runs.
    """

    RETRY_SECONDS = 2.0  # the first retry; each failure in a row doubles it
    RETRY_MAX_SECONDS = 30.0

    def __init__(
        self,
        path: Path,
        show: Show,
        loop: asyncio.AbstractEventLoop,
        on_error: Callable[[str], None] | None = None,
        on_saved: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.show = show
        self.error: str | None = None  # why the last write failed; None once saved
        self.saves = 0
        self._loop = loop
        self._on_error = on_error
        # Told the frame index a written file covers: the journal folds up to it.
        self._on_saved = on_saved
        self._covers: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._closing = False
        self._failures = 0  # failed writes in a row, for the backoff
        self._changed = asyncio.Event()  # a change since the last failure

    def save_threadsafe(
        self,
        snapshots: dict[str, dict[str, Any]],
        settings: dict[str, list[object]],
        covers: int | None = None,
    ) -> None:
        """Called on the render thread with every model's snapshot and the show-wide settings.

        `covers`: the frame they were taken at (what the journal may fold once written).
        """
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._update, snapshots, settings, covers)

    def save_patch_threadsafe(self, patch: list[list[object]]) -> None:
        """Called on the render thread with the patch as commands."""
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._update_patch, patch)

    def save_outputs_threadsafe(self, outputs: list[dict[str, Any]]) -> None:
        """Called from any thread with the projector outputs as the show keeps them."""
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._update_outputs, outputs)

    def save_presets_threadsafe(self, presets: dict[str, dict[str, Any]]) -> None:
        """Called on the render thread with every preset as the show keeps them."""
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._update_presets, presets)

    def _update_presets(self, presets: dict[str, dict[str, Any]]) -> None:
        self.show.presets = presets
        self._schedule()

    def _update_outputs(self, outputs: list[dict[str, Any]]) -> None:
        self.show.outputs = outputs
        self._schedule()

    def _update_patch(self, patch: list[list[object]]) -> None:
        self.show.patch = patch
        self._schedule()

    def replace(self, show: Show) -> None:
        """An imported show becomes the show (event loop)."""
        self.show = show
        self._schedule()

    def status(self) -> dict[str, object]:
        """For /api/status."""
        return {"path": str(self.path), "saved": self.error is None, "error": self.error}

    def _update(
        self,
        snapshots: dict[str, dict[str, Any]],
        settings: dict[str, list[object]],
        covers: int | None = None,
    ) -> None:
        self.show.models.update(snapshots)
        self.show.settings.update(settings)
        if covers is not None:
            self._covers = covers
        self._schedule()

    def _schedule(self) -> None:
        self._dirty = True
        self._changed.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        while self._dirty:
            self._dirty = False
            covers = self._covers  # what this write holds, taken with the text below
            try:
                # Serialised on the loop, where the show is changed: a consistent copy.
                text = dumps(self.show)
                await asyncio.to_thread(save_text, self.path, text)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure is reported and retried
                self._failed(exc)
                self._dirty = True
                if self._closing:
                    return
                await self._pause()
            else:
                self.saves += 1
                self._failures = 0
                # Only a write that landed lets the journal fold: after a failure the
                # journal still holds everything since the last file on disk.
                if covers is not None and self._on_saved is not None:
                    self._on_saved(covers)
                if self.error is not None:
                    logger.warning("the show is saved again to %s", self.path)
                    self.error = None

    async def _pause(self) -> None:
        """Wait before a retry: RETRY_SECONDS, then until a change or the backoff ends.

        The backoff doubles with each failure in a row up to RETRY_MAX_SECONDS; a
        new change (which may be what fixes it) is tried after RETRY_SECONDS.
        """
        self._changed.clear()
        await asyncio.sleep(self.RETRY_SECONDS)
        backoff = min(self.RETRY_SECONDS * 2 ** (self._failures - 1), self.RETRY_MAX_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), backoff - self.RETRY_SECONDS)

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, OSError):
            message = (
                f"the show could not be saved to {self.path}: {why}; "
                "it is kept in memory and saved as soon as the disk takes it"
            )
        else:  # the show itself would not serialise: the next valid change replaces it
            message = (
                f"the show could not be saved to {self.path}: {type(exc).__name__}: {why}; "
                "it is kept in memory and saved again with the next change"
            )
        if message != self.error:  # once per distinct cause, not every retry
            logger.error("%s", message, exc_info=not isinstance(exc, OSError))
            if self._on_error is not None:
                self._on_error(message)
        self.error = message

    async def flush(self) -> None:
        """Wait for a pending write (shutdown); one last try if the disk is still refusing."""
        await asyncio.sleep(0)  # take the engine's last snapshot, handed over as it stopped
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = asyncio.ensure_future(self._write())
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
