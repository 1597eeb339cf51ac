"""What `ganvj serve` prints: the links, and a QR code a phone really reads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from server.http.announce import announcement, lan_addresses, links
from server.http.auth import Tokens

TOKENS = Tokens(performer="perf-" + "x" * 20, admin="admin-" + "y" * 20)
# segno's compact terminal output: two modules per character, the light ones drawn.
HALF_BLOCKS = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}


def test_links_put_the_performer_token_in_the_fragment() -> None:
    found = links(
        addresses=["192.168.1.10", "10.0.0.4"], port=8765, tls=True, tokens=TOKENS, osc_port=9000
    )
    assert found.watch == "https://192.168.1.10:8765/"
    assert found.play == f"https://192.168.1.10:8765/control#t={TOKENS.performer}"
    assert found.osc == "192.168.1.10:9000"
    text = announcement(found, tls=True, admin="/state/tokens.json", qr=False)
    assert TOKENS.admin not in text  # the admin token stays in its file
    assert "also at  10.0.0.4" in text and "udp 192.168.1.10:9000" in text
    assert text.splitlines()[-1].startswith("ganvj: open https://192.168.1.10:8765/")


def test_a_given_host_is_the_only_address() -> None:
    assert lan_addresses("10.1.2.3") == ["10.1.2.3"]


@pytest.mark.webrtc
def test_a_wildcard_host_gives_this_machines_own_lan_addresses(webrtc_host: str) -> None:
    # The test namespace has exactly one address besides loopback: the veth's.
    assert lan_addresses("0.0.0.0") == [webrtc_host]


def test_the_printed_qr_code_reads_back_as_the_performer_link(tmp_path: Path) -> None:
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.fail("zbarimg is missing: scripts/install --test installs zbar-tools")
    found = links(addresses=["192.168.1.10"], port=8765, tls=False, tokens=TOKENS, osc_port=None)
    text = announcement(found, tls=False, admin="config.toml", qr=True)
    rows = [line for line in text.splitlines() if line and set(line) <= set(HALF_BLOCKS)]
    assert len(rows) > 10
    modules = np.array(
        [[HALF_BLOCKS[c][half] for c in row] for row in rows for half in (0, 1)], np.uint8
    )
    picture = np.kron(modules * 255, np.ones((8, 8), np.uint8))  # 8 px per module
    picture = np.pad(picture, 32, constant_values=255)
    path = tmp_path / "qr.pgm"
    height, width = picture.shape
    path.write_bytes(f"P5 {width} {height} 255\n".encode() + picture.tobytes())
    read = subprocess.run(
        [zbarimg, "--raw", "-q", str(path)], capture_output=True, text=True, timeout=30
    )
    assert read.stdout.strip() == found.play
