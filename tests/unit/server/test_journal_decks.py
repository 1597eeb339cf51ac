"""The journal with a real engine: deck b's keyframe stores and the presets stored just
before a kill come back in the next run (nothing is saved between: as after a kill -9)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from server import journal
from server.commands import parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from server.presets import check_presets
from tests.conftest import tiny_model

CPU = torch.device("cpu")


def journaled(path: Path, recovery: journal.Recovery, show: dict[str, dict]) -> Engine:  # type: ignore[type-arg]
    """An engine whose applied batches go to the journal at `path`, as serve wires it."""
    log = journal.Journal(path)
    log.begin(recovery, [])
    engines: list[Engine] = []
    hooks = EngineHooks(
        on_applied=lambda index, now, batches: log.append(
            index, now, batches, engines[0].deck_snapshots, engines[0].presets.to_json
        )
    )
    recovery.apply_presets(show)
    engine = Engine(
        model=tiny_model(seed=0),
        config=RenderConfig(size=32, fps=30.0),
        device=CPU,
        hooks=hooks,
        snapshots=recovery.snapshots,
        presets=check_presets(show),
    )
    engines.append(engine)
    # Deck b plays its own model (another name: the show keeps a bank per model).
    engine.set_deck_b(replace(tiny_model(seed=1), name="other"), 0.0)
    return engine


def test_deck_b_keyframe_stores_and_presets_survive_without_a_show_save(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    first = journaled(path, journal.Recovery(), {})
    first.submit([parse("/deck/b/latent/xy", [0.1, 0.9]), parse("/deck/b/keyframe/3/store", [])])
    first.submit([parse("/output/dim", [0.4]), parse("/preset/store", ["verse"])])
    first.render_at(0.0, 1 / 30)
    assert first.deck_b is not None
    before = first.deck_b.play.bank.clone()
    fresh = journaled(tmp_path / "fresh.jsonl", journal.Recovery(), {}).deck_b
    assert fresh is not None and not torch.equal(fresh.play.bank, before)  # the store changed it
    preset = first.presets.to_json()["verse"]
    # Killed here: nothing saved the show. The next run starts from the journal alone.
    recovery, _ = journal.read(path)
    second = journaled(tmp_path / "next.jsonl", recovery, {})
    assert second.deck_b is not None
    assert torch.equal(second.deck_b.play.bank, before)
    assert second.presets.to_json() == {"verse": preset}
    assert ["/output/dim", [0.4]] in recovery.commands
