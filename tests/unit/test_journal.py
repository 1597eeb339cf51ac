"""The write-ahead journal: written, folded, and read back after torn, corrupt or future files."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from server import journal
from server.commands import parse
from server.showfile import Show, ShowSaver


def write(path: Path, batches: list[list[list[object]]]) -> journal.Journal:
    log = journal.Journal(path)
    log.begin(journal.Recovery(), [])
    for i, batch in enumerate(batches, 1):
        log.append(i, float(i), [[parse(a, args) for a, args in batch]], lambda: {})  # type: ignore[arg-type]
    return log


def test_a_written_journal_reads_back_as_the_last_value_per_address(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    write(
        path,
        [
            [["/output/dim", [0.2]]],
            [["/output/dim", [0.7]], ["/latent/xy", [0.1, 0.9]]],
            [["/mod/route", ["audio/rms", "/latent/truncation", 0.5]]],
            [["/record/start", []]],
        ],
    ).close()
    recovery, count = journal.read(path)
    assert count == 5
    assert recovery.commands == [
        ["/output/dim", [0.7]],
        ["/latent/xy", [0.1, 0.9]],
        ["/mod/route", ["audio/rms", "/latent/truncation", 0.5]],
    ]
    assert recovery.notes == []


def test_a_torn_last_record_is_ignored_and_said(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    write(path, [[["/output/dim", [0.3]]]]).close()
    with path.open("a") as handle:
        handle.write('{"type":"frame","i":9,"batches":[[["/output/dim",[0.9]')
    recovery, _ = journal.read(path)
    assert recovery.commands == [["/output/dim", [0.3]]]
    assert "cut" in recovery.notes[0]


def test_a_corrupt_journal_starts_from_the_snapshot_and_says_what_was_dropped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.jsonl"
    write(path, [[["/output/dim", [0.3]]], [["/output/dim", [0.4]]]]).close()
    lines = path.read_text().splitlines()
    lines[1] = "not json at all"
    path.write_text("\n".join(lines) + "\n")
    recovery, count = journal.read(path)
    assert recovery.commands == [] and count == 0
    assert "dropped 2 records" in recovery.notes[0]
    assert (tmp_path / "journal.jsonl.bad").is_file()


def test_a_journal_from_a_newer_version_is_dropped_and_said(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    start = {"type": "start", "version": journal.VERSION + 1}
    frame = {"type": "frame", "i": 1, "batches": [[["/output/dim", [0.5], None]]]}
    path.write_text(json.dumps(start) + "\n" + json.dumps(frame) + "\n")
    recovery, _ = journal.read(path)
    assert recovery.commands == []
    assert "newer ganvj" in recovery.notes[0] and "dropped 1 records" in recovery.notes[0]


def test_a_show_save_folds_what_it_covers_and_keeps_what_it_does_not(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    log = write(
        path,
        [
            [["/output/dim", [0.2]]],
            [["/mod/route", ["audio/rms", "/latent/truncation", 0.5]]],
            [["/output/dim", [0.6]]],
        ],
    )
    log.covered(2)  # the show file now holds frames 1..2 (the route is in its patch)
    log.close()
    assert log.rotations == 1
    recovery, _ = journal.read(path)
    assert recovery.commands == [["/output/dim", [0.6]]]


def test_a_store_keeps_the_snapshot_not_the_command(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    log = journal.Journal(path)
    log.begin(journal.Recovery(), [])
    entry = {"z_dim": 2, "keyframes": [[0.5, -0.5]], "settings": {}}
    log.append(1, 1.0, [[parse("/keyframe/1/store", [])]], lambda: {"m": entry})
    log.close()
    recovery, _ = journal.read(path)
    assert recovery.commands == []
    assert recovery.snapshots == {"m": entry}


def test_the_model_loaded_last_is_kept_and_earlier_play_dropped(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    write(
        path,
        [
            [["/latent/xy", [0.3, 0.3]], ["/output/dim", [0.5]]],
            [["/model/load", ["second"]]],
            [["/latent/xy", [0.8, 0.2]]],
        ],
    ).close()
    recovery, _ = journal.read(path)
    assert recovery.model == "second"
    assert recovery.commands == [["/output/dim", [0.5]], ["/latent/xy", [0.8, 0.2]]]


def test_the_journal_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    log = journal.Journal(path, max_bytes=2000)
    log.begin(journal.Recovery(), [])
    for i in range(500):
        log.append(i, float(i), [[parse("/output/dim", [i / 500])]], dict)
    log.close()
    assert path.stat().st_size < 4000
    recovery, _ = journal.read(path)
    assert recovery.commands == [["/output/dim", [499 / 500]]]


async def test_a_show_save_that_fails_leaves_the_journal_whole_until_one_lands(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.jsonl"
    log = write(path, [[["/output/dim", [0.4]]], [["/latent/xy", [0.3, 0.6]]]])
    state = tmp_path / "state"
    state.write_text("a file where the state folder should be")  # every save fails
    errors: list[str] = []
    saver = ShowSaver(
        state / "show.json",
        Show(),
        asyncio.get_running_loop(),
        on_error=errors.append,
        on_saved=log.covered,
    )
    saver.RETRY_SECONDS = 0.05  # the backoff's first step, short for the test
    entry = {"z_dim": 1, "keyframes": [[0.5]], "settings": {}}
    # The engine's snapshot at frame 2, with the show-wide settings beside it.
    saver.save_threadsafe({"m": entry}, {"/output/hue": [0.25]}, covers=2)
    deadline = time.monotonic() + 5
    while not errors:
        assert time.monotonic() < deadline, "the failed save was not reported"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # several retries, all failing
    assert log.rotations == 0
    assert len(path.read_text().splitlines()) == 3  # start and both frames: nothing folded
    state.unlink()
    state.mkdir()  # the disk takes it again
    while saver.status()["saved"] is not True:
        assert time.monotonic() < deadline + 5, "the show was never saved"
        await asyncio.sleep(0.01)
    await saver.flush()
    assert log.rotations == 1  # folded once, by the save that landed
    assert len(path.read_text().splitlines()) == 2  # start and one folded line
    assert json.loads((state / "show.json").read_text())["settings"] == {"/output/hue": [0.25]}
    log.close()
    recovery, _ = journal.read(path)
    assert recovery.commands == [["/output/dim", [0.4]], ["/latent/xy", [0.3, 0.6]]]


def test_deck_b_keeps_its_own_model_and_position_and_a_preset_store_is_not_replayed() -> None:
    frame = {
        "type": "frame",
        "i": 1,
        "batches": [
            [
                ["/latent/xy", [0.3, 0.3], None],
                ["/deck/b/latent/xy", [0.1, 0.2], None],
                ["/deck/b/model/load", ["other"], None],
                ["/preset/store", ["verse"], None],
                ["/model/load", ["tiny"], None],
            ]
        ],
    }
    recovery = journal.fold([frame])
    assert recovery.model == "tiny"  # deck a's; deck b's load stays a command of deck b
    assert recovery.commands == [
        ["/deck/b/latent/xy", [0.1, 0.2]],
        ["/deck/b/model/load", ["other"]],
    ]


def test_preset_stores_and_deletes_come_back_as_stored_in_order(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    log = journal.Journal(path)
    log.begin(journal.Recovery(), [])
    verse = {"commands": [["/output/dim", [0.25]]], "positions": {}}
    chorus = {"commands": [["/output/dim", [0.75]]], "positions": {}}
    bank: dict[str, dict[str, object]] = {"verse": verse}
    log.append(1, 1.0, [[parse("/preset/store", ["verse"])]], dict, lambda: bank)
    bank = {"verse": verse, "chorus": chorus}
    log.append(2, 2.0, [[parse("/preset/store", ["chorus"])]], dict, lambda: bank)
    bank = {"chorus": chorus}
    log.append(3, 3.0, [[parse("/preset/delete", ["verse"])]], dict, lambda: bank)
    log.covered(2)  # a show save covered the first two: the presets stay all the same
    log.close()
    recovery, _ = journal.read(path)
    assert recovery.commands == []  # neither is replayed as a command
    assert recovery.presets == {"chorus": chorus, "verse": None}
    show = {"verse": verse, "old": chorus}
    recovery.apply_presets(show)
    assert show == {"old": chorus, "chorus": chorus}


def test_a_preset_in_the_journal_that_is_not_one_is_left_and_said(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    log = journal.Journal(path)
    log.begin(journal.Recovery(), [])
    log.append(
        1, 1.0, [[parse("/preset/store", ["verse"])]], dict, lambda: {"verse": {"commands": "no"}}
    )
    log.close()
    recovery, _ = journal.read(path)
    assert recovery.presets == {}
    assert any("preset not restored" in note for note in recovery.notes)
