"""Websocket control messages: the same vocabulary as OSC."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.ws_control import error_message, parse_control, state_message
from server.commands import Change, CommandError


def test_message_and_bundle():
    (command,) = parse_control({"address": "/keyframe/3/jump", "args": [2.0]}, origin="c1")
    assert command.path == {"n": 3} and command.args == (2.0,) and command.origin == "c1"
    assert parse_control({"address": "/sequence/stop"})[0].args == ()
    batch = parse_control(
        {
            "bundle": [
                {"address": "/latent/xy", "args": [0, 1]},
                {"address": "/latent/wander", "args": [0]},
            ]
        }
    )
    assert [c.address for c in batch] == ["/latent/xy", "/latent/wander"]
    assert parse_control({"address": "/latent/xy", "args": ["?"]})[0].query


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"address": 3},
        {"address": "/latent/xy", "args": "0.5"},
        {"address": "/latent/xy", "args": [0.5]},
        {"address": "/latent/xy", "args": [0.5, 0.5], "extra": 1},
        {"bundle": []},
        {"bundle": [{"address": "/latent/xy", "args": [0, 0]}, {"address": "/nope"}]},
        {"bundle": [{"address": "/sequence/stop"}] * 65},
        {"address": "/feedback/subscribe", "args": [9000]},
    ],
)
def test_bad_messages_raise_command_error(message):
    with pytest.raises(CommandError):
        parse_control(message)


def test_replies():
    assert state_message(Change("/latent/xy", (0.1, 0.2))) == {
        "type": "state",
        "address": "/latent/xy",
        "args": [0.1, 0.2],
    }
    assert error_message(CommandError("bad")) == {"type": "error", "error": "bad"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    address=st.sampled_from(["/latent/xy", "/keyframe/2/jump", "/tempo/bpm", "/x"]),
    args=json_values,
)
def test_random_json_parses_or_raises_command_error(address, args):
    with contextlib.suppress(CommandError):
        parse_control({"address": address, "args": args})
