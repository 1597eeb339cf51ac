"""Generated docs and the TouchOSC layout match the registry."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zlib

from server.commands import COMMANDS
from tools import docs_gen


def test_committed_files_equal_what_the_generator_makes_now():
    for path, content in docs_gen.generated().items():
        assert path.read_bytes() == content, f"{path} is stale: run python -m tools.docs_gen"


def test_reference_lists_every_command():
    text = docs_gen.osc_markdown()
    for spec in COMMANDS:
        assert f"`{spec.pattern}`" in text


def test_touchosc_layout_is_zlib_xml_whose_addresses_are_all_in_the_registry():
    from server.commands import lookup

    root = ET.fromstring(zlib.decompress(docs_gen.touchosc_layout()))
    assert root.tag == "lexml"
    paths = [p.text for p in root.iter("value") if p.text and p.text.startswith("/")]
    assert "/latent/xy" in paths and "/keyframe/16/jump" in paths
    assert "/preset/recall" in paths and "/mix/crossfade" in paths
    for path in paths:
        lookup(path)  # raises for an address the registry does not know
    # Buttons that send a fixed argument send one the command accepts.
    from server.commands import parse

    fixed = 0
    for osc in root.iter("osc"):
        address = osc.findtext("path/partial/value") or ""
        for argument in osc.findall("arguments/partial"):
            if argument.findtext("type") == "CONSTANT":
                text = argument.findtext("value") or ""
                conversion = argument.findtext("conversion")
                value = int(text) if conversion == "INTEGER" else text
                value = float(text) if conversion == "FLOAT" else value
                parse(address, [value])  # raises if refused
                fixed += 1
    assert fixed >= 18  # style sources and noise modes
