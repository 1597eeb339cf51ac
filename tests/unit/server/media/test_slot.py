"""Latest-frame slot: newest value wins, readers skip ahead, never a FIFO."""

from __future__ import annotations

import threading
import time

from server.media.slot import LatestSlot


def test_empty_slot_and_put() -> None:
    slot: LatestSlot[str] = LatestSlot()
    assert slot.latest() == (0, None)
    assert slot.put("a") == 1
    assert slot.latest() == (1, "a")


def test_reader_skips_to_newest() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for value in range(10):
        slot.put(value)
    # A late reader gets the newest, not the oldest unread.
    assert slot.wait_newer(0, timeout=0.1) == (10, 9)


def test_wait_times_out_with_nothing_newer() -> None:
    slot: LatestSlot[int] = LatestSlot()
    slot.put(1)
    started = time.monotonic()
    assert slot.wait_newer(1, timeout=0.05) == (1, 1)
    assert time.monotonic() - started >= 0.045


def test_waiter_wakes_on_put_and_close() -> None:
    slot: LatestSlot[int] = LatestSlot()
    results: list[tuple[int, int | None]] = []
    reader = threading.Thread(target=lambda: results.append(slot.wait_newer(0, timeout=5)))
    reader.start()
    time.sleep(0.02)
    slot.put(42)
    reader.join(1)
    assert results == [(1, 42)]

    reader = threading.Thread(target=lambda: results.append(slot.wait_newer(1, timeout=5)))
    reader.start()
    time.sleep(0.02)
    started = time.monotonic()
    slot.close()
    reader.join(1)
    assert time.monotonic() - started < 1
    assert slot.closed and results[-1] == (1, 42)
