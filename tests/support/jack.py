"""A private JACK server (Debian jackd2, dummy backend) for audio and MIDI tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SERVER = f"ganvj-test-{os.getpid()}"
RATE = 48000
PERIOD = 1024  # 21 ms: slack for a Python callback on a loaded machine


@contextmanager
def jack_server() -> Iterator[str]:
    """Start `jackd -d dummy` under a name of its own; its name while it runs."""
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.fail("the audio and MIDI tests need jackd: scripts/install --test installs jackd2")
    os.environ["JACK_DEFAULT_SERVER"] = SERVER  # rtmidi, PortAudio and JACK-Client read it
    os.environ.setdefault("JACK_NO_AUDIO_RESERVATION", "1")
    process = subprocess.Popen(
        [jackd, "--no-realtime", "-n", SERVER, "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        import jack

        deadline = time.monotonic() + 10.0
        while True:
            try:
                probe = jack.Client("ganvj-probe", no_start_server=True, servername=SERVER)
                probe.close()
                break
            except jack.JackError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    pytest.fail(f"jackd did not start: {error[-400:]}")
                time.sleep(0.1)
        yield SERVER
    finally:
        import sys

        if "sounddevice" in sys.modules:
            with contextlib.suppress(Exception):  # PortAudio asserts if JACK goes first
                sys.modules["sounddevice"]._terminate()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


def reload_portaudio() -> object:
    """sounddevice with PortAudio re-initialised, so it sees the JACK server running now."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
    return sd
