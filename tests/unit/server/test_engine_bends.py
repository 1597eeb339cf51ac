"""Bends and blends through a real engine: applied between frames, refused with /error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.catalog import Catalog
from server.commands import ERROR_ADDRESS, Change, parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from tests.conftest import save_tiny_model, tiny_model


def _engine(folder: Path) -> tuple[Engine, list[Change]]:
    changes: list[Change] = []
    engine = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32, wander_speed=0.0),
        device=torch.device("cpu"),
        catalog=Catalog(user_dir=folder),
        hooks=EngineHooks(on_changes=changes.extend),
    )
    engine.start_io = lambda work: work()  # loads and clusters inline, between frames
    return engine, changes


def _send(engine: Engine, address: str, *args: object) -> np.ndarray:
    engine.submit([parse(address, list(args))])
    return engine.render_once().yuv


def _errors(changes: list[Change]) -> list[tuple[object, ...]]:
    return [c.args for c in changes if c.address == ERROR_ADDRESS]


def _save(folder: Path, name: str, resolution: int = 32, seed: int = 2) -> None:
    save_tiny_model(folder / f"{name}.safetensors", resolution=resolution, seed=seed)


def test_a_bend_changes_the_picture_and_reset_restores_it_bit_for_bit(tmp_path: Path) -> None:
    engine, changes = _engine(tmp_path)
    _send(engine, "/latent/wander", 0)
    plain = engine.render_once().yuv
    assert np.array_equal(engine.render_once().yuv, plain)  # still: frames repeat exactly
    bent = _send(engine, "/bend/2/rotate", 90.0)
    assert not np.array_equal(bent, plain)
    assert np.array_equal(_send(engine, "/bend/2/rotate", 0.0), plain)  # zero is no bend
    _send(engine, "/bend/1/gain", 2.0)
    engine.submit([parse("/bend/1/gain", ["?"])])
    engine.render_once()
    assert Change("/bend/1/gain", (2.0,)) in changes
    assert np.array_equal(_send(engine, "/bend/reset"), plain)
    assert not _errors(changes)


def test_a_cluster_bend_waits_for_the_clusters_then_applies(tmp_path: Path) -> None:
    engine, changes = _engine(tmp_path)
    _send(engine, "/latent/wander", 0)
    plain = engine.render_once().yuv
    _send(engine, "/bend/2/cluster/1/gain", 0.0)
    bent = engine.render_once().yuv  # the resubmitted command lands before this frame
    assert not np.array_equal(bent, plain)
    assert Change("/bend/2/cluster/1/gain", (0.0,)) in changes
    assert np.array_equal(_send(engine, "/bend/reset"), plain)


def test_bad_bends_are_refused_and_change_nothing(tmp_path: Path) -> None:
    engine, changes = _engine(tmp_path)
    _send(engine, "/latent/wander", 0)
    plain = engine.render_once().yuv
    layers = len(engine.deck.bender.layers) if engine.deck.bender else 3  # DCGAN 32 px: 3
    assert np.array_equal(_send(engine, f"/bend/{layers + 1}/rotate", 45.0), plain)
    assert any(f"has layers 1..{layers}" in str(args[1]) for args in _errors(changes))
    for address, args in (("/bend/2/rotate", [500.0]), ("/bend/2/spin", [1.0])):
        try:
            parse(address, args)
        except ValueError as exc:  # the edges answer /error with this message
            assert "out of range" in str(exc) or "unknown address" in str(exc)
        else:
            raise AssertionError(f"{address} {args} was accepted")


def test_blending_toward_a_partner_and_back(tmp_path: Path) -> None:
    _save(tmp_path, "partner")
    _save(tmp_path, "wider", resolution=64)
    engine, changes = _engine(tmp_path)
    _send(engine, "/latent/wander", 0)
    plain = engine.render_once().yuv
    own = {k: v.clone() for k, v in engine.deck.module.state_dict().items()}
    _send(engine, "/blend/model", "partner")
    engine.render_once()  # the partner, loaded off the render thread, is taken at a frame's start
    assert Change("/blend/model", ("partner",)) in changes
    assert np.array_equal(engine.render_once().yuv, plain)  # amounts 0: exactly this model
    blended = _send(engine, "/blend/layers", "fine", 1.0)
    assert not np.array_equal(blended, plain)
    _send(engine, "/blend/layer/1", 0.5)
    engine.submit([parse("/blend/layer/1", ["?"])])
    engine.render_once()
    assert Change("/blend/layer/1", (0.5,)) in changes
    assert np.array_equal(_send(engine, "/blend/reset"), plain)
    assert all(torch.equal(v, own[k]) for k, v in engine.deck.module.state_dict().items())
    _send(engine, "/blend/model", "wider")
    engine.render_once()
    why = [args[1] for args in _errors(changes) if args[0] == "/blend/model"]
    assert why and "resolution differs" in str(why[0])
    _send(engine, "/blend/model", "missing")
    _send(engine, "/blend/mapping", 0.5)  # no partner now (and DCGAN has no mapping)
    assert len(_errors(changes)) == 3


def test_bends_are_kept_in_the_show_and_come_back(tmp_path: Path) -> None:
    engine, _ = _engine(tmp_path)
    _send(engine, "/bend/2/rotate", 30.0)
    snapshot = engine.deck.snapshot()
    assert snapshot["settings"]["/bend/2/rotate"] == [30.0]
    again = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32),
        device=torch.device("cpu"),
        snapshots={"tiny": snapshot},
    )
    assert again.deck.bends == {(2, 0): {"rotate": (30.0,)}}


def test_a_preset_brings_back_the_blend_partner_and_its_amounts(tmp_path: Path) -> None:
    _save(tmp_path, "partner")
    _save(tmp_path, "other", seed=3)
    engine, changes = _engine(tmp_path)
    _send(engine, "/latent/wander", 0)
    _send(engine, "/blend/model", "partner")
    engine.render_once()
    blended = _send(engine, "/blend/layers", "fine", 0.75)
    _send(engine, "/preset/store", "toon")
    _send(engine, "/blend/model", "other")  # another partner, amounts back at 0
    engine.render_once()
    assert not np.array_equal(engine.render_once().yuv, blended)
    # The recall sends the partner and its amounts in one batch: the amounts wait for it.
    _send(engine, "/preset/recall", "toon")
    engine.render_once()
    assert np.array_equal(engine.render_once().yuv, blended)
    engine.submit([parse("/blend/model", ["?"])])
    engine.render_once()
    assert Change("/blend/model", ("partner",)) in changes
    assert _errors(changes) == []
    # The same recall again keeps the partner that is there: no reload, the same picture.
    assert np.array_equal(_send(engine, "/preset/recall", "toon"), blended)
