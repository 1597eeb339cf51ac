"""Presets: the registry walk (every value comes back), names, bounds, the show file."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from models.catalog import Catalog
from models.checkpoint import LoadedModel
from server import showfile
from server.commands import ERROR_ADDRESS, REGISTRY, Change, lookup, parse, split_deck
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from server.presets import (
    MAX_PRESETS,
    PresetError,
    check_preset,
    check_presets,
    morphable,
    value_addresses,
    value_bearing,
)
from tests.conftest import save_tiny_model, tiny_model
from tests.support.tiny_stylegan import tiny_stylegan

# Values the walk cannot change in a unit test, each with why; everything else in
# value_addresses() must change and come back on at least one of the models below.
NOT_CHANGED_HERE = {
    "/model/load": "a switch loads a file on an io thread and the walk stays on one model "
    "(a preset keeps the name and recalls it like any value)",
    "/tempo/link": "following Link needs an Ableton Link peer; the value reads 0 without one",
}
# Prefixes the walk leaves to their own tests, each with why.
NOT_WALKED = {
    "/blend/": "a blend needs a partner model loaded on an io thread "
    "(tests/unit/server/test_engine_bends.py)",
    "/bend/": "walked on layer 1, whole layer only: other layers exist only on bigger "
    "models, and clusters are computed off the render thread (test_engine_bends.py)",
}
WALKED_BENDS = re.compile(r"/bend/1/[a-z]+")
# Deck b's own values, each with why it is left out of the walk (none: deck b is a full deck).
NOT_ON_DECK_B: dict[str, str] = {}


def _bare(address: str) -> str:
    """The address without its deck prefix: /deck/b/latent/seed -> /latent/seed."""
    return split_deck(address)[1]


def _walks(address: str) -> bool:
    bare = _bare(address)
    if address.startswith("/deck/b/") and bare.startswith(tuple(NOT_ON_DECK_B)):
        return False
    return not bare.startswith(tuple(NOT_WALKED)) or bool(WALKED_BENDS.fullmatch(bare))


# Values only some models take (the others answer /error): checked on the models that do.
NEEDS = {
    "/style/": ("stylegan2", "stylegan3"),
    "/transform/": ("stylegan3",),
    "/latent/class": ("conditional",),
}
# State A holds still: with spin on, /transform/rotate moves with time by design.
STILL = {"/transform/spin": [0.0]}


class Rig:
    """A real Engine stepped by hand, its feedback collected."""

    def __init__(self, model: LoadedModel) -> None:
        self.changes: list[Change] = []
        self.engine = Engine(
            model=model,
            config=RenderConfig(size=32),
            device=torch.device("cpu"),
            hooks=EngineHooks(on_changes=self.changes.extend),
        )
        # Deck b plays its own copy of the model: a preset keeps both decks' values.
        self.engine.set_deck_b(copy.deepcopy(model), 0.0)
        self.now = 0.0

    @classmethod
    def on(cls, engine: Engine, changes: list[Change]) -> Rig:
        """The same stepping and reading on an engine built by the test."""
        rig = cls.__new__(cls)
        rig.engine, rig.changes, rig.now = engine, changes, 0.0
        return rig

    def send(self, batch: Sequence[tuple[str, Sequence[object]]], seconds: float = 5.0) -> None:
        """Submit one batch, render a frame, then let time pass (quantized jumps land)."""
        self.changes.clear()
        assert self.engine.submit([parse(address, list(args)) for address, args in batch])
        self.now += 0.04
        self.engine.render_at(self.now, 0.04)
        self.now += seconds
        self.engine.render_at(self.now, seconds)

    def errors(self) -> set[str]:
        return {str(c.args[0]) for c in self.changes if c.address == ERROR_ADDRESS}

    def values(self, addresses: Sequence[str]) -> dict[str, tuple[object, ...]]:
        self.changes.clear()
        assert self.engine.submit([parse(address, ["?"]) for address in addresses])
        self.engine.render_at(self.now, 0.0)
        return {c.address: tuple(c.args) for c in self.changes if c.address in addresses}


def _choice(address: str, which: int) -> list[object]:
    """A valid value for every argument: `which` 0 and 1 give two different ones."""
    spec, _ = lookup(address)
    out: list[object] = []
    for arg in spec.args:
        if arg.choices:
            out.append(arg.choices[which])
        elif arg.type == "i":
            lo, hi = int(arg.min or 0), int(arg.max or 0)
            out.append(lo + which if hi - lo == 1 else lo + 1 + which)  # a switch: 0, 1
        else:
            lo, hi = float(arg.min or 0.0), float(arg.max or 0.0)
            out.append(lo + (0.25 if which == 0 else 0.75) * (hi - lo))
    return out


def _model_kinds(model: LoadedModel) -> set[str]:
    kinds = {model.arch}
    c_dim = getattr(getattr(model.module, "config", None), "c_dim", 0)
    if c_dim:
        kinds.add("conditional")
    return kinds


def _needs(address: str) -> tuple[str, ...] | None:
    return next((kinds for prefix, kinds in NEEDS.items() if address.startswith(prefix)), None)


def _walk(model: LoadedModel) -> set[str]:
    """Store A, change every value to B, recall A: every value of this model comes back."""
    rig = Rig(model)
    kinds = _model_kinds(model)
    walked = [
        a
        for a in value_addresses()
        if _bare(a) not in NOT_CHANGED_HERE
        and ((need := _needs(_bare(a))) is None or kinds & set(need))
        and _walks(a)
    ]
    rig.send([(a, STILL.get(_bare(a), _choice(a, 0))) for a in walked])
    assert rig.errors() == set(), f"{model.arch}: state A refused"
    stored = rig.values(walked)
    assert set(stored) == set(walked)
    latent_a = rig.engine.deck.play.position(rig.now)
    rig.send([("/preset/store", ["walk"])])
    assert rig.errors() == set()

    # Change every value: one batch, then alone each one a neighbour undid (a tour
    # stops wander, wander stops the tour), so each is seen changed.
    rig.send([(a, _choice(a, 1)) for a in walked])
    changed = rig.values(walked)
    for address in [a for a in walked if changed[a] == stored[a]]:
        rig.send([(address, _choice(address, 1))])
        assert rig.values([address])[address] != stored[address], f"{address} did not change"
    rig.send([("/latent/seed", [77])])  # and the picture moves elsewhere
    assert not torch.equal(rig.engine.deck.play.position(rig.now), latent_a)

    rig.send([("/preset/recall", ["walk"])])
    assert rig.errors() == set()
    recalled = rig.values(walked)
    differ = {a: (stored[a], recalled[a]) for a in walked if recalled[a] != stored[a]}
    assert differ == {}, f"{model.arch}: values a recall did not bring back"
    assert torch.equal(rig.engine.deck.play.position(rig.now), latent_a)
    return set(walked)


def test_registry_walk_every_value_comes_back_after_a_recall() -> None:
    covered: set[str] = set()
    for model in (
        tiny_model(),
        tiny_stylegan(c_dim=3),
        tiny_stylegan(name="tiny-sg3", sg3=True),
    ):
        covered |= _walk(model)
    # The next value someone adds to the registry is walked here, or named above.
    left = {a for a in value_addresses() if _bare(a) in NOT_CHANGED_HERE or not _walks(a)}
    assert covered | left == set(value_addresses())
    assert {a for a in covered if a.startswith("/deck/b/")}, "deck b's values were walked"
    assert {a for a in covered if a.startswith("/bend/")}, "bends were walked on layer 1"


def test_value_bearing_comes_from_the_registry_not_a_list() -> None:
    momentary = ["/keyframe/{n}/jump", "/tempo/tap", "/record/start", "/react/trigger"]
    assert not any(value_bearing(REGISTRY[p]) for p in momentary)
    read_only = ["/tempo/beat", "/react/state", "/preset/list", "/model/info"]
    assert not any(value_bearing(REGISTRY[p]) for p in read_only)
    # Admin-only commands (opening files on the server) are never in a preset.
    assert not value_bearing(REGISTRY["/react/source"])
    assert "/output/dim" in value_addresses() and "/latent/dir/8" in value_addresses()


def test_recall_keeps_modulation_routes_and_morphs_faders() -> None:
    rig = Rig(tiny_model())
    rig.send([("/mod/route", ["audio/rms", "/output/hue", 0.5]), ("/latent/truncation", [0.5])])
    rig.send([("/preset/store", ["routes"])])
    rig.send([("/mod/clear", []), ("/latent/truncation", [1.5])])
    assert rig.engine.patch.commands() == []
    rig.changes.clear()
    rig.engine.submit([parse("/preset/recall", ["routes", 10.0])])
    rig.now += 0.04
    rig.engine.render_at(rig.now, 0.04)
    assert rig.engine.patch.commands() == [["/mod/route", ["audio/rms", "/output/hue", 0.5]]]
    assert rig.engine.deck.play.truncation == 1.5  # the glide starts where it was
    rig.now += 3.0
    rig.engine.render_at(rig.now, 3.0)
    truncation = rig.engine.deck.play.truncation
    assert 0.5 < truncation < 1.5  # gliding, not cut
    rig.now += 3.0
    rig.engine.render_at(rig.now, 3.0)
    assert 0.5 < rig.engine.deck.play.truncation < truncation
    rig.now += 6.0
    rig.engine.render_at(rig.now, 6.0)
    assert rig.engine.deck.play.truncation == 0.5


def test_a_recall_morphs_each_regions_keyframe_over_its_seconds() -> None:
    rig = Rig(tiny_model())
    stored = [("/canvas/regions", [2]), ("/canvas/region/2/keyframe", [3])]
    rig.send([*stored, ("/preset/store", ["wide"])])
    rig.send([("/canvas/region/2/keyframe", [1])])
    play, regions = rig.engine.deck.play, rig.engine.regions
    one, three = play.keyframe_pose(1).latent, play.keyframe_pose(3).latent
    rig.engine.submit([parse("/preset/recall", ["wide", 4.0])])
    rig.now += 0.04
    rig.engine.render_at(rig.now, 0.04)
    assert regions.holds[1] == 3
    halfway = regions.poses(play.pose(rig.now, 0.0), play, rig.now + 2.0)[1].latent
    assert not torch.equal(halfway, one) and not torch.equal(halfway, three)  # morphing
    landed = regions.poses(play.pose(rig.now, 0.0), play, rig.now + 4.0)[1].latent
    assert torch.equal(landed, three)
    # A recall without seconds cuts the region in.
    rig.send([("/canvas/region/2/keyframe", [1])])
    rig.send([("/preset/recall", ["wide"])], seconds=0.0)
    now = regions.poses(play.pose(rig.now, 0.0), play, rig.now)[1].latent
    assert torch.equal(now, three)


def test_a_recall_glides_the_master_grades_faders() -> None:
    rig = Rig(tiny_model())
    stored = {"/output/dim": 0.2, "/output/saturation": 1.8, "/output/contrast": 0.4}
    rig.send([*((a, [v]) for a, v in stored.items()), ("/preset/store", ["grade"])])
    rig.send([("/output/dim", [1.0]), ("/output/saturation", [1.0]), ("/output/contrast", [1.0])])
    rig.send([("/preset/recall", ["grade", 4.0])], seconds=2.0)
    master = rig.engine.master  # halfway: gliding, not cut
    assert 0.2 < master.dim < 1.0 and 1.0 < master.saturation < 1.8 and 0.4 < master.contrast < 1.0
    rig.send([], seconds=3.0)
    assert (master.dim, master.saturation, master.contrast) == (0.2, 1.8, 0.4)


def test_a_recall_glides_a_two_number_fader_and_leaves_the_xy_pad_to_the_position() -> None:
    assert morphable("/bend/1/translate") and morphable("/deck/b/transform/translate")
    assert not morphable("/latent/xy")  # the position glides as a whole
    rig = Rig(tiny_model())
    rig.send([("/bend/1/translate", [0.4, -0.2]), ("/preset/store", ["moved"])])
    rig.send([("/bend/reset", [])])
    rig.changes.clear()
    rig.send([("/preset/recall", ["moved", 4.0])], seconds=2.0)
    rig.send([("/bend/1/translate", ["?"])], seconds=0.0)
    x, y = next(c.args for c in rig.changes if c.address == "/bend/1/translate")
    assert 0.0 < x < 0.4 and -0.2 < y < 0.0  # halfway, both numbers
    rig.send([], seconds=3.0)
    rig.send([("/bend/1/translate", ["?"])], seconds=0.0)
    assert [c.args for c in rig.changes if c.address == "/bend/1/translate"] == [(0.4, -0.2)]


def test_a_recall_turns_the_hue_and_a_rotation_the_short_way_round() -> None:
    rig = Rig(tiny_model())
    rig.send([("/output/hue", [0.1]), ("/bend/1/rotate", [-170.0]), ("/preset/store", ["turn"])])
    rig.send([("/output/hue", [0.9]), ("/bend/1/rotate", [170.0])])
    rig.send([("/preset/recall", ["turn", 4.0])], seconds=2.0)
    hue = rig.engine.master.hue
    assert hue > 0.95 or hue < 0.05  # through red (0 = 1), not through 0.5, the opposite
    rig.send([("/bend/1/rotate", ["?"])], seconds=0.0)
    (degrees,) = next(c.args for c in rig.changes if c.address == "/bend/1/rotate")
    assert abs(degrees) > 170.0  # through 180, not through 0
    rig.send([], seconds=3.0)
    assert rig.engine.master.hue == 0.1


def test_a_fader_moved_during_a_recall_wins() -> None:
    rig = Rig(tiny_model())
    rig.send([("/latent/truncation", [0.5]), ("/preset/store", ["p"])])
    rig.send([("/latent/truncation", [1.5]), ("/preset/recall", ["p", 10.0])], seconds=1.0)
    rig.send([("/latent/truncation", [1.2])], seconds=20.0)
    assert rig.engine.deck.play.truncation == 1.2


@pytest.mark.parametrize(
    ("batch", "why"),
    [
        ([("/preset/store", ["a" * 33])], "1..32"),
        ([("/preset/store", ["no spaces"])], "1..32"),
        ([("/preset/store", ["../x"])], "1..32"),
        ([("/preset/recall", ["missing"])], "no preset called 'missing'"),
        ([("/preset/delete", ["missing"])], "no preset called 'missing'"),
    ],
)
def test_bad_names_and_missing_presets_are_errors_that_change_nothing(
    batch: list[tuple[str, list[object]]], why: str
) -> None:
    rig = Rig(tiny_model())
    rig.send([("/latent/truncation", [0.7])])
    rig.send(batch)
    errors = [c for c in rig.changes if c.address == ERROR_ADDRESS]
    assert len(errors) == 1 and why in str(errors[0].args[1])
    assert rig.engine.presets.names() == ()
    assert rig.engine.deck.play.truncation == 0.7


def test_store_list_delete_and_the_bound() -> None:
    rig = Rig(tiny_model())
    rig.send([("/preset/store", [f"p{i}"]) for i in range(MAX_PRESETS)])
    assert len(rig.engine.presets.names()) == MAX_PRESETS
    rig.send([("/preset/store", ["one-too-many"])])
    assert any(f"at most {MAX_PRESETS}" in str(e.args[1]) for e in rig.changes)
    rig.send([("/preset/store", ["p1"])])  # replacing one is not adding one
    assert rig.errors() == set()
    rig.send([("/preset/delete", ["p1"])])
    assert "p1" not in rig.engine.presets.names()
    assert rig.values(["/preset/list"])["/preset/list"] == rig.engine.presets.names()


def test_presets_survive_a_restart_through_the_show_file(tmp_path: Path) -> None:
    saved: list[dict[str, object]] = []
    engine = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32),
        device=torch.device("cpu"),
        hooks=EngineHooks(on_presets=saved.append),
    )
    engine.submit([parse("/output/hue", [0.25]), parse("/preset/store", ["warm"])])
    engine.render_at(1.0, 0.04)
    path = tmp_path / "show.json"
    showfile.save(path, showfile.Show(presets=saved[-1]))  # type: ignore[arg-type]
    loaded = showfile.load(path)
    assert loaded is not None and set(loaded.presets) == {"warm"}
    again = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32),
        device=torch.device("cpu"),
        presets=check_presets(loaded.presets),
    )
    again.submit([parse("/preset/recall", ["warm"])])
    again.render_at(1.0, 0.04)
    assert again.master.query("/output/hue", 1.0) == (0.25,)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ([], "expected an object"),
        ({"commands": [["/output/hue", [float("nan")]]]}, "finite"),
        ({"commands": [["/output/hue", [3.0]]]}, "out of range"),
        ({"commands": [["/record/start", []]]}, "not a value a preset keeps"),
        ({"commands": [["/react/source", ["file:x"]]]}, "not a value a preset keeps"),
        ({"commands": [["/preset/recall", ["x"]]]}, "not a value a preset keeps"),
        ({"commands": [["/model/load", ["/etc/passwd.safetensors"]]]}, "not a value"),
        ({"commands": [["/output/hue", [0.1]]] * 5000}, "at most"),
        ({"positions": {"c": {}}}, "a deck is a or b"),
        ({"positions": {"a": {"model": "m", "space": "z", "values": [1e999]}}}, "finite"),
    ],
)
def test_a_corrupt_preset_is_refused(data: object, why: str) -> None:
    with pytest.raises(PresetError, match=why):
        check_preset(json.loads(json.dumps(data, allow_nan=True)))


def test_a_show_file_with_a_bad_preset_name_is_refused() -> None:
    with pytest.raises(showfile.ShowFileError, match="preset name"):
        showfile.validate({"version": showfile.VERSION, "presets": {"bad name": {}}})


def _on_alpha(folder: Path) -> tuple[Engine, Rig]:
    """Models alpha and beta as tiny DCGAN files in the test's own models folder, and an
    engine playing alpha whose loads run inline (they land a frame later), with its rig."""
    for name, seed in (("alpha", 1), ("beta", 2)):
        save_tiny_model(folder / f"{name}.safetensors", seed=seed)
    catalog = Catalog(user_dir=folder)
    changes: list[Change] = []
    engine = Engine(
        model=catalog.load(catalog.resolve("alpha"), device="cpu"),
        config=RenderConfig(size=32),
        device=torch.device("cpu"),
        catalog=catalog,
        hooks=EngineHooks(on_changes=changes.extend),
    )
    engine.start_io = lambda work: work()
    return engine, Rig.on(engine, changes)


def test_a_recall_that_loads_a_model_lands_each_decks_values_on_that_model(
    tmp_path: Path,
) -> None:
    engine, rig = _on_alpha(tmp_path)
    both = [("/model/load", ["beta"]), ("/deck/b/model/load", ["beta"])]
    rig.send(both)
    assert (engine.model.name, engine.deck_b and engine.deck_b.model.name) == ("beta", "beta")
    stored = {
        "/latent/wander": (0,),
        "/latent/seed": (11,),
        "/latent/truncation": (0.5,),
        "/deck/b/latent/wander": (0,),
        "/deck/b/latent/seed": (22,),
        "/deck/b/latent/truncation": (0.75,),
    }
    rig.send([(a, list(v)) for a, v in stored.items()])
    positions = (engine.deck.play.position(rig.now), engine.decks["b"].deck.play.position(rig.now))  # type: ignore[union-attr]
    rig.send([("/preset/store", ["on-beta"])])
    # Beta's values change, and beta's show entry keeps the changed ones; then alpha plays.
    rig.send([(a, [33 if "seed" in a else 1.5 if "truncation" in a else 0]) for a in stored])
    rig.send([("/model/load", ["alpha"]), ("/deck/b/model/load", ["alpha"])])
    assert engine.model.name == "alpha"
    rig.send([("/preset/recall", ["on-beta"])])
    assert rig.errors() == set()
    assert (engine.model.name, engine.deck_b and engine.deck_b.model.name) == ("beta", "beta")
    assert rig.values(list(stored)) == stored  # on beta, not lost on alpha
    assert torch.equal(engine.deck.play.position(rig.now), positions[0])
    assert torch.equal(engine.decks["b"].deck.play.position(rig.now), positions[1])  # type: ignore[union-attr]
    assert engine.decks["a"].recall is None and engine.decks["b"].recall is None


def test_a_recall_whose_model_cannot_load_lands_its_values_on_the_playing_model(
    tmp_path: Path,
) -> None:
    engine, rig = _on_alpha(tmp_path)
    rig.send([("/model/load", ["beta"])])
    rig.send([("/latent/wander", [0]), ("/latent/seed", [11])])
    rig.send([("/preset/store", ["on-beta"])])
    rig.send([("/model/load", ["alpha"])])
    (tmp_path / "beta.safetensors").unlink()  # gone: the recall's load cannot begin
    rig.send([("/latent/seed", [5]), ("/preset/recall", ["on-beta"])])
    assert engine.model.name == "alpha" and engine.decks["a"].recall is None
    assert rig.values(["/latent/seed"]) == {"/latent/seed": (11,)}
