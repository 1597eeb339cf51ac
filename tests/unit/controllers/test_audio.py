"""The audio feature core on generated signals: onsets on time, bands that separate."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.audio import AudioFeatures, Follower, to_mono
from tests.support.signals import hats, kick_pattern

RATE = 48000
BLOCK = 256


def run(signal: np.ndarray, block: int = BLOCK) -> list:
    core = AudioFeatures(sample_rate=RATE)
    return [core.process(signal[i : i + block]) for i in range(0, len(signal) - block + 1, block)]


def test_kicks_are_found_within_one_block_and_nothing_else() -> None:
    signal, starts = kick_pattern(RATE)
    features = run(signal)
    found = [f.sample for f in features if f.onset]
    assert len(found) == len(starts), (found, starts)
    for got, want in zip(found, starts, strict=True):
        # Reported by the block that holds the kick's start, or the next one.
        assert abs(got - want) < BLOCK, (got, want)


def test_bands_separate_a_kick_from_hats() -> None:
    signal, _ = kick_pattern(RATE, times=(0.1, 0.6), seconds=1.0, noise=0.0)
    kick_features = run(signal)
    assert max(f.bass for f in kick_features) > 0.8
    assert max(f.high for f in kick_features) < max(f.bass for f in kick_features)
    hat_features = run(hats(RATE))
    assert max(f.high for f in hat_features) > 0.8
    assert max(f.bass for f in hat_features) < 0.5


def test_silence_stays_at_zero_and_the_onset_envelope_decays() -> None:
    features = run(np.zeros(RATE // 2, dtype=np.float32))
    assert all(f.rms == 0.0 and f.bass == 0.0 and not f.onset for f in features)
    signal, _ = kick_pattern(RATE, times=(0.1,), seconds=0.8, noise=0.0)
    levels = [f.onset_level for f in run(signal)]
    peak = levels.index(1.0)
    assert levels[-1] < 0.1 and all(
        a >= b for a, b in zip(levels[peak:], levels[peak + 1 :], strict=False)
    )


def test_follower_gain_attack_and_release() -> None:
    follow = Follower(floor=0.01, decay_seconds=1.0, attack_s=0.001, release_s=0.5)
    assert follow(0.2, 0.01) == pytest.approx(1.0, abs=1e-3)  # its own peak: full scale
    assert follow(0.1, 0.01) > 0.95  # release is slow
    for _ in range(500):
        value = follow(0.1, 0.01)  # the running max decays to the new level
    assert value == pytest.approx(1.0, abs=0.01)


def test_bad_blocks_are_refused_or_cleaned() -> None:
    core = AudioFeatures(sample_rate=RATE)
    with pytest.raises(ValueError):
        core.process(np.zeros(0))
    noisy = np.full(BLOCK, np.nan, dtype=np.float32)
    assert core.process(noisy).rms == 0.0
    stereo = np.stack([np.full(4, 32767, np.int16), np.zeros(4, np.int16)], axis=1)
    assert to_mono(stereo) == pytest.approx([0.5] * 4)
