"""The engine's preset bank at work: storing every value, recalling it (cut, glided, or
waiting for a model the recall loads), the morphs of a recall, imported presets.

What a preset holds and how it is checked is server/presets.py; this module applies
them, on the render thread, through the engine's own command path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

import torch

from server.commands import ERROR_ADDRESS, REGISTRY, Change, Command, error, parse
from server.deck import Channel, PendingRecall
from server.presets import (
    CLEAR_PATCH,
    FaderMorph,
    Position,
    Preset,
    PresetBank,
    PresetError,
    capture,
    check_name,
    circle,
    morphable,
)
from server.regions import KEYFRAME_PATTERN as REGION_KEYFRAME

logger = logging.getLogger(__name__)


class PresetControl:
    """/preset/*: the bank, stores, recalls and their morphs (render thread); imports from
    any thread."""

    def __init__(
        self,
        presets: Mapping[str, Preset] | None,
        *,
        decks: Mapping[str, Channel],
        apply: Callable[[Sequence[Command], float], list[Change]],
        answer: Callable[[str, float], tuple[object, ...] | None],
        patch: Callable[[], list[list[object]]],
    ) -> None:
        self.bank = PresetBank(presets)
        self.dirty = False  # the bank changed since the show file heard of it
        self.morphs: dict[str, FaderMorph] = {}  # a recall's faders gliding to their values
        self._decks = decks
        self._apply = apply  # a batch through the engine's command path, at one instant
        self._answer = answer  # "?" of one concrete address through the same path
        self._patch = patch  # the patch's routes and triggers, as commands
        self._lock = threading.Lock()
        self._imports: list[tuple[str, Preset]] = []  # from the event loop, under the lock

    def import_preset(self, name: str, preset: Preset) -> None:
        """Store an imported preset (already checked) before the next frame (any thread)."""
        with self._lock:
            self._imports.append((check_name(name), preset))

    def replace_all(self, presets: dict[str, Preset]) -> None:
        """An imported show's presets replace them all before the next frame (any thread)."""
        with self._lock:
            self._imports = [("", Preset(commands=()))]  # "": clear the bank first
            self._imports += [(check_name(n), p) for n, p in presets.items()]

    def positions(self, now: float) -> dict[str, Position]:
        """Every deck's latent position, as a preset keeps it (a deck with a model)."""
        positions: dict[str, Position] = {}
        for name, channel in self._decks.items():
            deck = channel.deck
            if deck is not None:
                values = tuple(float(v) for v in deck.play.position(now).tolist())
                positions[name] = Position(
                    model=deck.model.name, space=deck.space.name, values=values
                )
        return positions

    def apply(self, command: Command, now: float) -> list[Change]:
        """/preset/*: store, recall, delete, list."""
        if command.query:  # /preset/list
            return [Change(command.address, self.bank.names(), command.origin)]
        name = str(command.args[0])
        try:
            if command.name == "/preset/store":
                check_name(name)
                answer = lambda address: self._answer(address, now)  # noqa: E731
                preset = capture(answer, self._patch(), self.positions(now))
                self.bank.store(name, preset)
            elif command.name == "/preset/delete":
                self.bank.delete(name)
            else:
                seconds = float(command.args[1]) if len(command.args) > 1 else 0.0  # type: ignore[arg-type]
                return self._recall(self.bank.get(name), now, seconds)
        except PresetError as exc:
            return [error(command, str(exc))]
        self.dirty = True
        return [Change("/preset/list", self.bank.names())]

    def _switching(self, preset: Preset) -> dict[str, str]:
        """The decks whose stored model is not the one playing there: deck -> that model."""
        found: dict[str, str] = {}
        for address, args in preset.commands:
            command = parse(address, list(args))
            if command.name == "/model/load":
                deck = self._decks[command.deck].deck
                if deck is None or deck.model.name != str(args[0]):
                    found[command.deck] = str(args[0])
        return found

    def _recall(self, preset: Preset, now: float, seconds: float) -> list[Change]:
        """Cut every stored value in as one batch; glide the faders, the position and the
        regions' keyframes.

        A deck whose stored model is not playing loads it (off this thread); that deck's
        values and position belong to that model, so they wait and land once it is in.
        """
        switching = self._switching(preset)
        waiting: dict[str, list[Command]] = {deck: [] for deck in switching}
        batch: list[Command] = [parse(CLEAR_PATCH, [])]
        morphs: list[FaderMorph] = []
        for address, args in preset.commands:
            command = parse(address, list(args))
            if command.deck in switching and _model_bound(command):
                waiting[command.deck].append(command)
                continue
            if seconds > 0.0 and command.name == REGION_KEYFRAME:
                # A region morphs to its keyframe over the recall, as the position glides.
                batch.append(parse(address, [args[0], seconds]))
                continue
            if seconds > 0.0 and morphable(address):
                current = self._answer(address, now)
                if current and len(current) >= len(args):
                    start = tuple(float(v) for v in current[: len(args)])  # type: ignore[arg-type]
                    end = tuple(float(v) for v in args)  # type: ignore[arg-type]
                    morphs.append(FaderMorph(address, start, end, now, seconds, circle(address)))
                    continue
            batch.append(command)
        changes = self._landed(batch, now)
        for morph in morphs:
            self.morphs[morph.address] = morph
        for name, channel in self._decks.items():
            position = preset.positions.get(name)
            recall = PendingRecall(
                model=switching.get(name, ""),
                commands=waiting.get(name, []),
                position=position,
                seconds=seconds,
            )
            if name not in switching:
                self._glide(channel, position, now, seconds)
            elif channel.loading == recall.model:  # its load began: the rest waits for it
                channel.recall = recall
            else:  # the load did not begin (said why): the values go where they used to
                changes.extend(self.land(channel, recall, now))
        return changes

    def _landed(self, batch: list[Command], now: float) -> list[Change]:
        """A recall's batch applied; a value this model cannot take is skipped, not an error."""
        changes = []
        for change in self._apply(batch, now):
            if change.address == ERROR_ADDRESS:
                # A value this model cannot take (style mixing kept from a StyleGAN,
                # now on a DCGAN): skipped, the rest of the preset still lands.
                logger.info("preset value skipped: %s: %s", *change.args)
            else:
                changes.append(change)
        return changes

    def land(self, channel: Channel, recall: PendingRecall, now: float) -> list[Change]:
        """A recall's values for one deck, now that its model plays (render thread)."""
        changes = self._landed(recall.commands, now)
        self._glide(channel, recall.position, now, recall.seconds)
        return changes

    def _glide(
        self, channel: Channel, position: Position | None, now: float, seconds: float
    ) -> None:
        """Move a deck to a preset's position, if it was stored on the model playing there."""
        deck = channel.deck
        if position is None or deck is None:
            return
        if (position.model, position.space) == (deck.model.name, deck.space.name):
            deck.play.glide_to(torch.tensor(position.values), now, seconds)

    def advance(self, now: float) -> list[Change]:
        """Move every gliding fader one frame on; a finished one lands on its value."""
        if not self.morphs:
            return []
        batch = [parse(m.address, list(m.value(now))) for m in self.morphs.values()]
        self.morphs = {a: m for a, m in self.morphs.items() if not m.done(now)}
        return [c for c in self._apply(batch, now) if c.address != ERROR_ADDRESS]

    def take_imports(self) -> list[Change]:
        """Store the presets imported since the last frame."""
        with self._lock:
            imports, self._imports = self._imports, []
        changes: list[Change] = []
        for name, preset in imports:
            if not name:
                self.bank = PresetBank()
                self.dirty = True
                continue
            try:
                self.bank.store(name, preset)
            except PresetError as exc:
                changes.append(Change(ERROR_ADDRESS, ("/preset/import", str(exc))))
                continue
            self.dirty = True
            changes.append(Change("/preset/list", self.bank.names()))
        return changes


def _model_bound(command: Command) -> bool:
    """Whether a deck command's value belongs to the model playing (its latent state, its
    bends and blend) rather than to the deck (its fader, reaction, source)."""
    spec = REGISTRY[command.name]
    return spec.deck and (spec.owner == "play" or command.name.startswith(("/bend/", "/blend/")))
