"""The training bar's total and ETA follow whichever ends a run first: steps or time limit."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from models.train import Run, TrainConfig, expected_last_step


def test_without_a_time_limit_the_bar_counts_to_the_steps() -> None:
    assert expected_last_step(step=10, steps=500, start_step=0, elapsed=5.0, time_limit=0) == 500


def test_a_time_limit_that_ends_first_sets_the_total() -> None:
    # 10 steps in 5 s (2 steps/s) with 85 s left: 170 more steps, not the 99_990 still to go.
    last = expected_last_step(step=10, steps=100_000, start_step=0, elapsed=5.0, time_limit=90)
    assert last == 180


def test_steps_that_end_first_still_set_the_total() -> None:
    assert expected_last_step(step=10, steps=50, start_step=0, elapsed=5.0, time_limit=90) == 50


def test_a_resumed_run_counts_its_rate_from_where_it_resumed() -> None:
    # Resumed at step 1000: 10 steps in 5 s, 5 s left -> 10 more.
    last = expected_last_step(step=1010, steps=9000, start_step=1000, elapsed=5.0, time_limit=10)
    assert last == 1020


def test_past_the_limit_the_total_is_the_step_reached() -> None:
    assert expected_last_step(step=30, steps=9000, start_step=0, elapsed=12.0, time_limit=10) == 30


def test_the_real_bar_of_a_time_limited_run_ends_near_its_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = 10**9  # a run the time limit, not the step count, ends
    train = TrainConfig(steps=steps, time_limit=0.3, log_every=10**9)
    run = Run(tmp_path / "run", train=train, resume=False, force=False)

    def step() -> dict[str, float]:
        time.sleep(0.01)
        return {"loss": 1.0}

    result = run.loop(step, save=lambda: None, sample=lambda: None, images_per_step=1)
    shown = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    done, total = (int(n) for n in re.search(r"(\d+)/(\d+)", shown).groups())  # type: ignore[union-attr]
    assert done == result.step
    assert total < 10 * result.step + 100 < steps  # the bar was never sized by the 10**9 steps
