"""Play the generated kick pattern into every other JACK input, from a process of its own.

Run as `python -m tests.support.jack_player`: a separate process, so the test's own
threads (rendering, feature extraction) never make it miss a JACK cycle.
Reads "go" on stdin, prints "playing" and then "done".
"""

from __future__ import annotations

import sys
import threading

import jack

from tests.support.signals import kick_pattern


def main() -> int:
    client = jack.Client("ganvj-kicks", no_start_server=True)
    port = client.outports.register("out")
    signal, _ = kick_pattern(client.samplerate)
    go = threading.Event()
    done = threading.Event()
    started: list[int] = []

    @client.set_process_callback
    def process(frames: int) -> None:
        buffer = port.get_array()
        buffer[:] = 0.0
        if not go.is_set():
            return
        now = client.last_frame_time
        if not started:
            started.append(now)
        position = now - started[0]  # on JACK's clock: a missed cycle is lost, never late
        chunk = signal[position : position + frames]
        buffer[: len(chunk)] = chunk
        if position >= len(signal):
            done.set()

    with client:
        for target in client.get_ports(is_audio=True, is_input=True):
            if not target.name.startswith(("system:", "ganvj-kicks:")):
                client.connect(port, target)
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return 1
        go.set()
        print("playing", flush=True)
        done.wait(timeout=30)
        print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
