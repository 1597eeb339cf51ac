"""`ganvj bench forward`'s mixer rows: every blend mode, deck b idle, the goal judged at 512 px."""

from __future__ import annotations

import torch

from models.mixing import MODES
from server.bench.forward import mixer_rows


def test_the_mixer_rows_name_every_mode_and_deck_b_idle_and_judge_512_px_only() -> None:
    rows = mixer_rows([16, 512], device=torch.device("cpu"), seconds=0.01)
    text = "\n".join(rows)
    for side in (16, 512):
        assert f"mixer at {side} px, ms per frame (warm):" in text
    for mode in MODES:
        assert text.count(f"{mode} ") >= 2  # a figure per side
    assert text.count("deck b idle (crossfade 0):") == 2
    assert text.count("(goal < 1 ms)") == 1  # the goal is at 512 px
    small_verdict = rows[2]
    assert small_verdict.strip().startswith("worst ") and "goal" not in small_verdict
