"""`ganvj bench stream`'s canvas figures: the stage table and the CPU by thread."""

from __future__ import annotations

import math

from models.catalog import default_model_path
from server.bench.stream import stage_lines, stage_times, thread_shares


def test_the_stage_table_times_every_stage_of_the_shipped_default() -> None:
    medians, db = stage_times(default_model_path("unconditional"), (320, 180), frames=3)
    assert list(medians)[:7] == [
        "generator forward",
        "fill",
        "RGB->YUV at the model's size",
        "scale: libswscale (now)",
        "scale: torch bicubic (before)",
        "copy into av.VideoFrame",
        "encode libvpx x1",
    ]
    assert "encode libx264 x1" in medians
    assert all(wall >= 0.0 and cpu >= 0.0 for wall, cpu in medians.values())
    assert medians["generator forward"][1] > 0.0
    # 320x180 from 128 x 224: scaled down, the two kernels close but not equal.
    assert 35.0 < db < math.inf
    lines = stage_lines(default_model_path("unconditional"), (320, 180), frames=2)
    assert any(line.startswith("render thread, CPU ms per frame:") for line in lines)
    assert sum(line.startswith("encoder thread, ") for line in lines) == 2


def test_thread_shares_name_the_loop_the_encoder_and_the_render_thread() -> None:
    pid = 100
    before = {100: ("python", 1.0), 101: ("python", 2.0), 102: ("ganvj-encode", 0.5)}
    after = {
        100: ("python", 1.5),  # the main thread: the event loop
        101: ("python", 5.0),  # the busiest other: the render thread
        102: ("ganvj-encode", 2.5),
        103: ("ganvj-encode", 0.25),  # an FFmpeg thread started meanwhile
        104: ("python", 0.125),  # something else
    }
    shares = thread_shares(pid, before, after)
    assert shares == {"event loop": 0.5, "encoder": 2.25, "render": 3.0, "other": 0.125}
