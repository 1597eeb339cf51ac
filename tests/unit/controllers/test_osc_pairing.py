"""OSC pairings kept in state_dir: written whole, read back, and a bad file starts empty."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from controllers.osc_pairing import PAIRINGS_FILE, Pairings


def test_pairings_are_kept_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / PAIRINGS_FILE
    pairings = Pairings(path)
    assert pairings.pair("::ffff:10.0.0.23") and not pairings.pair("10.0.0.23")
    assert pairings.pair("fd00::5")
    assert json.loads(path.read_text()) == {"hosts": ["10.0.0.23", "fd00::5"]}
    assert Pairings(path).hosts == ("10.0.0.23", "fd00::5")
    assert pairings.unpair("10.0.0.23") and not pairings.unpair("10.0.0.23")
    assert Pairings(path).hosts == ("fd00::5",)
    assert [p.name for p in path.parent.iterdir()] == [PAIRINGS_FILE]  # no temporary left
    with pytest.raises(ValueError):
        pairings.pair("tablet.local")


@pytest.mark.parametrize(
    "content", ["{not json", '["10.0.0.2"]', '{"hosts": "10.0.0.2"}', "\xff\xfe not UTF-8"]
)
def test_a_bad_file_is_logged_and_starts_empty(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / PAIRINGS_FILE
    path.write_text(content, encoding="latin-1")
    with caplog.at_level(logging.ERROR):
        pairings = Pairings(path)
    assert pairings.hosts == ()
    assert len(caplog.records) == 1 and str(path) in caplog.records[0].getMessage()
    assert pairings.pair("10.0.0.2")  # and the next pairing writes a good file
    assert Pairings(path).hosts == ("10.0.0.2",)


def test_one_bad_entry_is_left_out_and_the_list_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / PAIRINGS_FILE
    path.write_text(json.dumps({"hosts": ["10.0.0.2", "nope", 7, "10.0.0.3"]}))
    assert Pairings(path).hosts == ("10.0.0.2", "10.0.0.3")
    small = Pairings(path, max_hosts=2)
    small.pair("10.0.0.4")
    assert small.hosts == ("10.0.0.3", "10.0.0.4")
