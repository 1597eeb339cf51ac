"""Controllers import only the vocabulary, so they load without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CHECK = """
import json, sys
import controllers.midi, controllers.osc, controllers.ws_control
print(json.dumps(sorted(sys.modules)))
"""


def test_controllers_load_without_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=ROOT,
    )
    loaded = set(json.loads(result.stdout))
    assert {"controllers.osc", "controllers.ws_control", "controllers.midi"} <= loaded
    # models.names (what a model is called: name or path) and models.fills (the canvas
    # fill modes) are the torch-free leaves the vocabulary takes from the models room.
    light = {"models", "models.names", "models.fills"}
    heavy = sorted(
        name for name in loaded if name.split(".")[0] in ("torch", "models") and name not in light
    )
    assert heavy == []
    assert "server.play" not in loaded and "server.engine" not in loaded
