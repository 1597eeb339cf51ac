"""Typed configuration: `config.toml` mapped onto frozen dataclasses.

Loaded once at start. A bad value fails with the key's name, the value and
what would be accepted; an unknown key fails too, since a typo that is
silently ignored costs a performer a show.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from models.fills import FILLS
from server.outputs.mapping import MappingError, OutputMapping, check_outputs

CODECS = ("vp8", "h264")
ENCODERS = ("auto", "nvenc", "software")
MAX_SIDE = 8192  # px, either side of the canvas
MAX_PIXELS = 8192 * 4320  # the whole canvas: 8K wide, or several 4K projectors side by side


class ConfigError(ValueError):
    """A configuration value that cannot be used, with the key that holds it."""


@dataclass(frozen=True)
class ServerConfig:
    """Where the HTTP + websocket server listens, and who may reach it."""

    host: str = "0.0.0.0"
    port: int = 8765
    # STUN/TURN URLs. Empty by default so nothing reaches outside the LAN.
    ice_servers: tuple[str, ...] = ()
    max_viewers: int = 16
    # HTTPS and WSS on the same port: phones give /camera the camera only then.
    tls: bool = False
    tls_cert: str = ""  # PEM files; both empty = a self-signed pair made once and kept
    tls_key: str = ""
    state_dir: str = "~/.local/share/ganvj"  # show files, tokens, the self-signed certificate
    # Who may play (server/http/auth.py): loopback and these addresses/CIDRs get
    # every role without a token; others are viewers unless they bring one.
    trust_loopback: bool = True
    trusted: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()  # other web origins whose pages may use /ws
    # More names this server answers to (a DNS name, a reverse proxy's); its
    # addresses, localhost and the machine's host name are always accepted.
    hostnames: tuple[str, ...] = ()
    performer_token: str = ""  # "" = generated at first start and kept in state_dir
    admin_token: str = ""


@dataclass(frozen=True)
class RenderConfig:
    """The resident generator and the render loop."""

    model: str = ""  # a model name (file stem in state_dir/models) or path; "" = the default
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    device_b: str = ""  # deck b's own device (two GPUs); "" = render.device's
    fps: float = 30.0
    # The canvas: "WxH" ("1920x1080", "3840x1080") or one number for a square;
    # 0 = the model's own square. Scaled on the device; see `canvas`.
    size: int | str = 512
    fill: str = "native"  # how the model's picture fills the canvas: one of FILLS
    half: bool = True  # half precision on CUDA where the model allows it
    compile: bool = False  # torch.compile a StyleGAN's synthesis on CUDA (proved at load)
    compile_deadline_s: float = 300.0  # a compile still running after this: eager
    threads: int = 0  # torch CPU threads; 0 = one less than the cores, leaving one to encode
    seed: int = 0
    wander_speed: float = 1.0
    pix2pix: str = ""  # image-to-image model for reactions; "" = the shipped default
    encoder: str = ""  # image -> latent encoder for mirror; "" = the shipped one if it fits
    feedback: str = ""  # next-frame model that feedback iterates; "" = the shipped one
    smoothing: float = 0.0  # blend of each output frame with the previous one (0..0.99)
    react_fade_s: float = 0.5  # crossfade into and out of a reaction
    feedback_inject: float = 0.0  # feedback: share of fresh picture entering the loop
    react_stall_s: float = 1.0  # input silent this long: fall back to latent play

    @property
    def canvas(self) -> tuple[int, int]:
        """(width, height) of the canvas; (0, 0) = the model's own square."""
        return parse_size(self.size)


@dataclass(frozen=True)
class StreamConfig:
    """The encoded WebRTC stream."""

    codec: str = "vp8"
    bitrate_kbps: int = 6000
    keyframe_interval_s: float = 4.0
    # One encoder shared by every viewer. False makes aiortc encode per viewer:
    # only the benchmark wants that, as the comparison.
    shared_encoder: bool = True
    # Ask browsers to show each frame as soon as it decodes (playout-delay 0).
    zero_playout_delay: bool = True
    # auto: NVIDIA's hardware encoder for h264 where PyAV has one that opens,
    # else software (libx264, libvpx); nvenc: ask for it (h264 only), with the
    # same fallback; software: never the hardware one.
    encoder: str = "auto"
    encoder_threads: int = 0  # software encoder threads; 0 = what the frame size and cores allow


@dataclass(frozen=True)
class OscConfig:
    """OSC control over UDP (TouchOSC, Ableton, any OSC client)."""

    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 9000
    # "host:port" targets that get state feedback from the start (a TouchOSC
    # tablet's address and its receive port); others subscribe with /feedback/subscribe.
    feedback: tuple[str, ...] = ()
    # Senders allowed, as addresses or CIDR networks ("192.168.1.23", "10.0.0.0/24");
    # empty: loopback plus the subnets of this machine's own interfaces.
    allow: tuple[str, ...] = ()
    # If set, every OSC message must carry it as its first argument (a string).
    token: str = ""


@dataclass(frozen=True)
class TempoConfig:
    """Tempo for quantized jumps and morphs measured in beats."""

    bpm: float = 120.0
    link: bool = False  # join an Ableton Link session (needs the aalink package)
    # Browser decode + display after a frame leaves the server, added to the
    # measured render-to-send time when rendering ahead of the beat.
    display_latency_ms: float = 60.0


@dataclass(frozen=True)
class InputsConfig:
    """Incoming video for reactions."""

    media_dir: str = "~/.local/share/ganvj/media"  # where /react/source file:NAME looks


@dataclass(frozen=True)
class OutputConfig:
    """Where frames go besides the WebRTC viewers: NDI, a Janus SFU."""

    ndi: bool = False  # send an NDI source (needs the .[ndi] extra)
    ndi_name: str = ""  # "" = "ganvj (<host name>)"
    janus: str = ""  # Janus HTTP API, e.g. "http://10.0.0.5:8088/janus"; "" = off
    janus_mountpoint: int = 0  # Streaming mountpoint id; 0 = create one
    janus_admin_key: str = ""  # the Streaming plugin's admin_key, to create mountpoints
    janus_rtp_host: str = ""  # where RTP goes; "" = the host of the janus URL
    janus_video_port: int = 0  # RTP port of an existing mountpoint; 0 = ask Janus
    janus_public_url: str = ""  # Janus URL browsers reach; set, / plays from Janus


@dataclass(frozen=True)
class AudioConfig:
    """Sound in for audio reactivity (modulation sources and onset triggers)."""

    enabled: bool = False  # open a sound card at start (the /audio page works either way)
    device: str = ""  # a PortAudio device name or number; "" = the default input
    sample_rate: int = 48000
    block: int = 256  # samples per callback: features update at sample_rate / block Hz


@dataclass(frozen=True)
class MidiConfig:
    """MIDI controllers: mappings live in the show file, learned from the control page."""

    inputs: tuple[str, ...] = ()  # port names (or the start of one) to open; [] = none
    outputs: tuple[str, ...] = ()  # ports that get LED feedback (pads light when current)
    api: str = "auto"  # rtmidi backend: auto | alsa | jack
    clock: bool = True  # follow a MIDI clock on an input as the tempo when Link is off


@dataclass(frozen=True)
class LimitsConfig:
    """Every bound in one place."""

    ws_max_message_bytes: int = 256 * 1024
    # Viewers and players (performer, admin) are counted apart, each up to the
    # limit, so a full house never locks the performer out; the per-client
    # limits apply to viewers (one address: one client).
    ws_max_connections: int = 64
    ws_connections_per_client: int = 8
    ws_messages_per_s: int = 200  # per connection, a second's worth at once; more: an error
    ws_offers_per_min: int = 12  # WebRTC offers per connection
    offers_per_min: int = 240  # viewers' offers (/ws and WHEP) from everyone together
    offers_per_min_per_client: int = 30
    viewers_per_client: int = 4  # viewer peers of one address (server.max_viewers: all)
    peer_connect_s: int = 10  # a peer not connected (ICE + DTLS) by then is closed
    command_queue: int = 1024
    viewer_packet_queue: int = 8


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    server: ServerConfig = field(default_factory=ServerConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    osc: OscConfig = field(default_factory=OscConfig)
    tempo: TempoConfig = field(default_factory=TempoConfig)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    midi: MidiConfig = field(default_factory=MidiConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    # [[outputs]]: projector outputs, named slices of the canvas (server/outputs/mapping.py)
    outputs: tuple[OutputMapping, ...] = ()

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
        """A copy with dotted keys (`render.fps`) replaced, validated like the file."""
        tables: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            table, _, name = key.partition(".")
            tables.setdefault(table, {})[name] = value
        updated = self
        for table, values in tables.items():
            section = getattr(updated, table)
            merged = {**dataclasses.asdict(section), **values}
            updated = replace(updated, **{table: _build(type(section), table, merged)})
        return updated


def load_config(path: Path | None) -> Config:
    """Read and validate a TOML file; None gives the defaults."""
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    return config_from_mapping(data)


def config_from_mapping(data: Mapping[str, Any]) -> Config:
    """Validate a parsed TOML document."""
    sections = {f.name: f for f in fields(Config)}
    built: dict[str, Any] = {}
    for table, values in data.items():
        if table not in sections:
            raise ConfigError(
                f"unknown table [{table}]: expected one of {', '.join(sorted(sections))}"
            )
        if table == "outputs":
            try:
                built[table] = check_outputs(values, "outputs")
            except MappingError as exc:
                raise ConfigError(str(exc)) from exc
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"{table} must be a table, got {values!r}")
        section_type = _section_type(table)
        built[table] = _build(section_type, table, values)
    return Config(**built)


def _section_type(table: str) -> type:
    return {
        "server": ServerConfig,
        "render": RenderConfig,
        "stream": StreamConfig,
        "osc": OscConfig,
        "tempo": TempoConfig,
        "inputs": InputsConfig,
        "audio": AudioConfig,
        "midi": MidiConfig,
        "limits": LimitsConfig,
        "output": OutputConfig,
    }[table]


def _build(section_type: type, table: str, values: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in fields(section_type)}
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known:
            raise ConfigError(
                f"unknown key {table}.{name}: expected one of {', '.join(sorted(known))}"
            )
        kwargs[name] = _coerce(f"{table}.{name}", value, known[name].type)
    section = section_type(**kwargs)
    _check_ranges(section)
    return section


def _coerce(key: str, value: Any, type_name: Any) -> Any:
    # Annotations are strings under `from __future__ import annotations`.
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} = {value!r}: expected true or false")
    if type_name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} = {value!r}: expected a whole number")
    if type_name == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key} = {value!r}: expected a finite number")
            return float(value)
        raise ConfigError(f"{key} = {value!r}: expected a number")
    if type_name == "int | str":
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return value
        raise ConfigError(f'{key} = {value!r}: expected a size such as "1920x1080" or 512')
    if type_name == "str":
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} = {value!r}: expected a string")
    if type_name == "tuple[str, ...]":
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{key} = {value!r}: expected a list of strings")
    raise AssertionError(f"no coercion for {type_name}")  # a new field type needs a branch


def _require(ok: bool, key: str, value: Any, accepted: str) -> None:
    if not ok:
        raise ConfigError(f"{key} = {value!r}: expected {accepted}")


def _check_ranges(section: Any) -> None:
    if isinstance(section, ServerConfig):
        _require(0 <= section.port <= 65535, "server.port", section.port, "0..65535")
        _require(bool(section.host), "server.host", section.host, "an address such as 0.0.0.0")
        _require(
            1 <= section.max_viewers <= 256, "server.max_viewers", section.max_viewers, "1..256"
        )
        for spec in section.trusted:
            _require(
                _is_network(spec), "server.trusted", spec, 'addresses or CIDRs ("10.0.0.0/24")'
            )
        for name in section.hostnames:
            _require(
                bool(name.strip()) and all(c.isalnum() or c in ".-_:[]" for c in name),
                "server.hostnames",
                name,
                'host names or addresses such as "visuals.example" (no scheme, no port)',
            )
        for origin in section.allowed_origins:
            _require(
                origin.startswith(("http://", "https://")) and "/" not in origin.split("//", 1)[1],
                "server.allowed_origins",
                origin,
                'origins such as "https://visuals.example:8443" (scheme, host, port; no path)',
            )
        for key, token in (
            ("performer_token", section.performer_token),
            ("admin_token", section.admin_token),
        ):
            _require(
                not token or len(token) >= 16,
                f"server.{key}",
                "…",
                "at least 16 characters, or empty",
            )
        for url in section.ice_servers:
            _require(
                url.split(":", 1)[0] in ("stun", "turn", "turns"),
                "server.ice_servers",
                url,
                "stun:, turn: or turns: URLs",
            )
    elif isinstance(section, RenderConfig):
        _require(1.0 <= section.fps <= 1000.0, "render.fps", section.fps, "1..1000")
        _require(
            0.1 <= section.compile_deadline_s <= 3600.0,
            "render.compile_deadline_s",
            section.compile_deadline_s,
            "0.1..3600 seconds",
        )
        try:
            parse_size(section.size)
        except ValueError:
            _require(False, "render.size", section.size, SIZES_ACCEPTED)
        _require(section.fill in FILLS, "render.fill", section.fill, ", ".join(FILLS))
        device = section.device
        _require(
            device in ("auto", "cpu", "cuda", "mps") or _is_cuda_index(device),
            "render.device",
            device,
            "auto, cpu, cuda, cuda:N or mps",
        )
        device_b = section.device_b
        _require(
            device_b in ("", "auto", "cpu", "cuda", "mps") or _is_cuda_index(device_b),
            "render.device_b",
            device_b,
            '"" (render.device\'s), auto, cpu, cuda, cuda:N or mps',
        )
        _require(
            0.0 <= section.wander_speed <= 100.0,
            "render.wander_speed",
            section.wander_speed,
            "0..100",
        )
        for key, value, low, high in (
            ("threads", section.threads, 0, 256),
            ("smoothing", section.smoothing, 0.0, 0.99),
            ("feedback_inject", section.feedback_inject, 0.0, 1.0),
            ("react_fade_s", section.react_fade_s, 0.0, 30.0),
            ("react_stall_s", section.react_stall_s, 0.1, 60.0),
        ):
            _require(low <= value <= high, f"render.{key}", value, f"{low}..{high}")
    elif isinstance(section, StreamConfig):
        _require(section.codec in CODECS, "stream.codec", section.codec, " or ".join(CODECS))
        _require(
            100 <= section.bitrate_kbps <= 100_000,
            "stream.bitrate_kbps",
            section.bitrate_kbps,
            "100..100000",
        )
        _require(
            0.5 <= section.keyframe_interval_s <= 60.0,
            "stream.keyframe_interval_s",
            section.keyframe_interval_s,
            "0.5..60",
        )
        _require(
            section.encoder in ENCODERS, "stream.encoder", section.encoder, ", ".join(ENCODERS)
        )
        _require(
            section.encoder != "nvenc" or section.codec == "h264",
            "stream.encoder",
            section.encoder,
            'auto or software with stream.codec = "vp8" (NVENC encodes h264)',
        )
        _require(
            0 <= section.encoder_threads <= 64,
            "stream.encoder_threads",
            section.encoder_threads,
            "0 (auto)..64",
        )
    elif isinstance(section, OscConfig):
        _require(0 <= section.port <= 65535, "osc.port", section.port, "0..65535")
        for target in section.feedback:
            host, _, port = target.rpartition(":")
            _require(
                bool(host) and port.isdigit() and 1 <= int(port) <= 65535,
                "osc.feedback",
                target,
                '"host:port" strings such as "192.168.1.20:9001"',
            )
        for entry in section.allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                _require(False, "osc.allow", entry, 'addresses or CIDRs such as "10.0.0.0/24"')
    elif isinstance(section, TempoConfig):
        _require(20.0 <= section.bpm <= 999.0, "tempo.bpm", section.bpm, "20..999")
        _require(
            0.0 <= section.display_latency_ms <= 1000.0,
            "tempo.display_latency_ms",
            section.display_latency_ms,
            "0..1000",
        )
    elif isinstance(section, OutputConfig):
        for key in ("janus", "janus_public_url"):
            url = getattr(section, key)
            _require(
                not url or url.split("://", 1)[0] in ("http", "https"),
                f"output.{key}",
                url,
                'an http(s) URL such as "http://10.0.0.5:8088/janus", or ""',
            )
        for key in ("janus_mountpoint", "janus_video_port"):
            value = getattr(section, key)
            limit = 65535 if key.endswith("port") else 2**31 - 1
            _require(0 <= value <= limit, f"output.{key}", value, f"0..{limit}")
    elif isinstance(section, AudioConfig):
        _require(
            8000 <= section.sample_rate <= 192000,
            "audio.sample_rate",
            section.sample_rate,
            "8000..192000",
        )
        _require(32 <= section.block <= 4096, "audio.block", section.block, "32..4096")
    elif isinstance(section, MidiConfig):
        _require(
            section.api in ("auto", "alsa", "jack"), "midi.api", section.api, "auto, alsa or jack"
        )
    elif isinstance(section, LimitsConfig):
        for f in fields(section):
            value = getattr(section, f.name)
            _require(
                1 <= value <= 64 * 1024 * 1024, f"limits.{f.name}", value, "a positive whole number"
            )


SIZES_ACCEPTED = (
    f'"WxH" with even sides from 16 to {MAX_SIDE} and at most {MAX_PIXELS} pixels '
    '("1920x1080", "3840x1080"), one such number for a square, or 0 (the model\'s own size)'
)


def parse_size(value: int | str) -> tuple[int, int]:
    """A canvas size ("1920x1080", "512", 512, 0) -> (width, height); (0, 0) = native.

    ValueError (with what is accepted) for a malformed, odd, zero-sided or too large size.
    """
    text = str(value).strip().lower()
    parts = text.split("x")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"size {value!r}: expected {SIZES_ACCEPTED}")
    if len(parts) == 1:
        if int(parts[0]) == 0:
            return (0, 0)
        parts = parts * 2
    width, height = int(parts[0]), int(parts[1])
    if not (
        16 <= width <= MAX_SIDE
        and 16 <= height <= MAX_SIDE
        and width % 2 == 0
        and height % 2 == 0
        and width * height <= MAX_PIXELS
    ):
        raise ValueError(f"size {value!r}: expected {SIZES_ACCEPTED}")
    return (width, height)


def _is_network(spec: str) -> bool:
    try:
        ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False
    return True


def _is_cuda_index(device: str) -> bool:
    prefix, _, index = device.partition(":")
    return prefix == "cuda" and index.isdigit()
