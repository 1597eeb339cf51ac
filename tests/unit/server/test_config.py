"""Config: good files load, bad values fail with the key, the value and what is accepted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.config import Config, ConfigError, load_config

REPO = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_shipped_config_is_the_defaults() -> None:
    assert load_config(REPO / "config.toml") == Config()


def test_good_file_maps_onto_typed_sections(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[server]
port = 9999
ice_servers = ["stun:stun.example.org:3478"]
[render]
fps = 24
device = "cuda:1"
device_b = "cuda:0"
size = 0
[stream]
codec = "h264"
bitrate_kbps = 12000
""",
        )
    )
    assert config.server.port == 9999
    assert config.server.ice_servers == ("stun:stun.example.org:3478",)
    assert config.render.fps == 24.0 and isinstance(config.render.fps, float)
    assert config.render.device == "cuda:1" and config.render.device_b == "cuda:0"
    assert config.render.size == 0
    assert config.stream.codec == "h264"
    assert config.limits == Config().limits


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[render]\nfps = -3", ["render.fps", "-3", "1..1000"]),
        ("[render]\nfps = 'fast'", ["render.fps", "'fast'", "number"]),
        ("[render]\nfps = nan", ["render.fps", "finite"]),
        ("[render]\nsize = 33", ["render.size", "33", "even"]),
        ("[render]\ndevice = 'gpu'", ["render.device", "'gpu'", "cuda:N"]),
        ("[render]\ndevice_b = 'cuda1'", ["render.device_b", "'cuda1'", "cuda:N"]),
        ("[render]\ndevice_b = 'cuda:-1'", ["render.device_b", "'cuda:-1'", '""']),
        ("[server]\nport = 70000", ["server.port", "70000", "0..65535"]),
        ("[server]\nport = true", ["server.port", "True", "whole number"]),
        ("[server]\nice_servers = ['http://x']", ["server.ice_servers", "stun:"]),
        ("[stream]\ncodec = 'av1'", ["stream.codec", "'av1'", "vp8 or h264"]),
        ("[stream]\nbitrate_kbps = 5", ["stream.bitrate_kbps", "100..100000"]),
        ("[render]\nfsp = 30", ["unknown key render.fsp", "fps"]),
        ("[rendering]\nfps = 30", ["unknown table [rendering]", "render"]),
        ("render = 3", ["render must be a table"]),
        ("[limits]\ncommand_queue = 0", ["limits.command_queue", "positive"]),
        ("[limits]\npeer_connect_s = 0", ["limits.peer_connect_s", "positive"]),
        ("[server]\nhostnames = ['http://x/']", ["server.hostnames", "no scheme"]),
        ("[render]\nsmoothing = 1.5", ["render.smoothing", "1.5", "0.0..0.99"]),
        ("[render]\nthreads = -1", ["render.threads", "-1", "0..256"]),
        ("[render]\nreact_stall_s = 0", ["render.react_stall_s", "0.1..60"]),
        ("[osc]\nfeedback = ['tablet']", ["osc.feedback", "'tablet'", "host:port"]),
        ("[tempo]\nbpm = 5", ["tempo.bpm", "20..999"]),
    ],
)
def test_bad_values_name_key_value_and_accepted(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    for needle in needles:
        assert needle in str(caught.value)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[render\nfps = 3"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_overrides_are_validated_like_the_file() -> None:
    config = Config().with_overrides({"server.port": 1234, "render.fps": 60})
    assert config.server.port == 1234 and config.render.fps == 60.0
    assert config.render.size == Config().render.size
    with pytest.raises(ConfigError, match=r"render\.fps"):
        Config().with_overrides({"render.fps": 0})


def test_outputs_tables_are_read_and_their_errors_name_the_key(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        "[[outputs]]\nname = 'left'\nrect = [0.0, 0.0, 0.575, 1.0]\n"
        "corners = [[0, 0], [1, 0], [1, 1], [0, 1]]\nblend = [0.0, 0.26, 0.0, 0.0]\ngamma = 2.2\n"
        "[[outputs]]\nname = 'right'\nrect = [0.425, 0.0, 0.575, 1.0]\n"
    )
    left, right = load_config(good).outputs
    assert left.blend == (0.0, 0.26, 0.0, 0.0) and right.rect == (0.425, 0.0, 0.575, 1.0)
    for body, words in (
        ("name = 'left'\nblend = [0.6, 0.5, 0, 0]", "outputs[0] (left): blend"),
        ("name = 'left'\ncorners = [[0, 0], [1, 1], [1, 0], [0, 1]]", "corners"),
        ("name = 'left'\ngamma = 9.0", "gamma"),
        ("name = 'left'\nrekt = [0, 0, 1, 1]", "unknown key rekt"),
        ("name = 'a b'", "outputs[0].name"),
        ("rect = [0, 0, 1, 1]", "name is missing"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(f"[[outputs]]\n{body}\n")
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_config(bad)


@pytest.mark.parametrize(
    ("size", "canvas"),
    [
        ('"1920x1080"', (1920, 1080)),
        ('"3840x1080"', (3840, 1080)),
        ('"1024x1024"', (1024, 1024)),
        ('"1080X1920"', (1080, 1920)),
        ("512", (512, 512)),
        ('"512"', (512, 512)),
        ("0", (0, 0)),
    ],
)
def test_canvas_sizes_are_wxh_or_one_number(tmp_path: Path, size: str, canvas: object) -> None:
    config = load_config(write(tmp_path, f'[render]\nsize = {size}\nfill = "mirror"\n'))
    assert config.render.canvas == canvas
    assert config.render.fill == "mirror"


@pytest.mark.parametrize(
    "size",
    [
        *('"1921x1080"', '"0x1080"', '"1920x0"', '"9000x1080"', '"8192x8192"', '"wide"'),
        *('"1920x"', '"1920x1080x2"', '"-1920x1080"', "33", "4", "true", '""', "[1920, 1080]"),
    ],
)
def test_bad_canvas_sizes_fail_with_the_key_and_what_is_accepted(tmp_path: Path, size: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"[render]\nsize = {size}\n"))
    message = str(caught.value)
    assert "render.size" in message
    assert "WxH" in message or "size" in message


def test_bad_fill_and_encoder_keys_fail_with_what_is_accepted(tmp_path: Path) -> None:
    for text, needles in (
        ('[render]\nfill = "zoom"', ["render.fill", "native", "mirror"]),
        ('[stream]\nencoder = "quicksync"', ["stream.encoder", "auto", "nvenc"]),
        ('[stream]\nencoder = "nvenc"\ncodec = "vp8"', ["stream.encoder", "h264"]),
        ("[stream]\nencoder_threads = -1", ["stream.encoder_threads", "0 (auto)"]),
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, text))
        assert all(n in str(caught.value) for n in needles), (text, str(caught.value))


def test_size_flag_overrides_with_a_canvas() -> None:
    config = Config().with_overrides({"render.size": "3840x1080", "render.fill": "crop"})
    assert config.render.canvas == (3840, 1080) and config.render.fill == "crop"
    with pytest.raises(ConfigError, match=r"render\.size"):
        Config().with_overrides({"render.size": "3841x1080"})
