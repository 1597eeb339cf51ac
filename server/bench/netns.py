"""A private network namespace for WebRTC tests and benchmarks.

aioice never offers 127.0.0.1 as a candidate, and nothing may reach this
machine's real network, so WebRTC runs between peers on a veth pair in a
namespace of its own (scripts/test makes the same one for the test run).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from server.bench.faults import PRIVATE_MOUNTS_ENV

ADDRESS = "10.77.0.1"
NAMESPACE_SETUP = (
    "ip link set lo up; ip link add v0 type veth peer name v1; "
    f"ip addr add {ADDRESS}/24 dev v0; ip link set v0 up; ip link set v1 up; "
)
REPO = Path(__file__).resolve().parents[2]


def has_address(address: str) -> bool:
    """True if this network namespace owns `address`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


def in_namespace() -> bool:
    """True inside the private namespace (ADDRESS is ours)."""
    return has_address(ADDRESS)


def reexec_in_namespace(argv: Sequence[str], module: str, limit_s: float = 3600.0) -> int:
    """Run `python -m module argv` again inside fresh network and mount namespaces."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        print(
            "ganvj bench: needs `unshare` and `ip` (util-linux, iproute2) to make a private "
            "network namespace for WebRTC",
            file=sys.stderr,
        )
        return 2
    userns = [] if os.geteuid() == 0 else ["-r"]
    command = [sys.executable, "-m", module, *argv]
    script = f"export {PRIVATE_MOUNTS_ENV}=1; " + NAMESPACE_SETUP + 'exec "$@"'
    # Bounded: a benchmark that has not finished in `limit_s` is stopped, never left running.
    # `timeout` (coreutils) signals the whole command inside the namespace, then kills it.
    bound = ["timeout", "--kill-after=20", f"{int(limit_s)}"]
    code = subprocess.call(
        [*bound, "unshare", *userns, "-n", "-m", "sh", "-c", script, "sh", *command], cwd=REPO
    )
    if code == 124:
        print(f"ganvj bench: stopped after its {limit_s:.0f} s limit", file=sys.stderr)
    return code
