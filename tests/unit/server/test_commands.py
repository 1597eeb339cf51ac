"""The command registry: every command validates its arguments at the edge."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.commands import COMMANDS, REGISTRY, ArgSpec, CommandError, describe, parse


def _concrete(pattern: str) -> str:
    spec = REGISTRY[pattern]
    address = pattern
    for name, (lo, _hi) in spec.path.items():
        address = address.replace("{" + name + "}", str(lo))
    for name in spec.names:
        address = address.replace("{" + name + "}", "left")
    return address


def _good(arg: ArgSpec) -> object:
    if arg.type == "s":
        return arg.choices[0] if arg.choices else "dcgan"
    lo = arg.min if arg.min is not None else 0
    return int(lo) if arg.type == "i" else float(lo)


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda s: s.pattern)
def test_each_command_accepts_good_values_and_rejects_bad(spec):
    address = _concrete(spec.pattern)
    good = [_good(arg) for arg in spec.args]
    if spec.settable:
        command = parse(address, good)
        assert command.name == spec.pattern and not command.query
        assert len(command.args) == len(spec.args)
        with pytest.raises(CommandError):
            parse(address, [*good, 1.0])  # too many
    for i, arg in enumerate(spec.args):
        if not spec.settable:
            break
        bad_values: list[object] = [None, [1], {"a": 1}]
        if arg.type == "s":
            bad_values += [1.0, 2, True]
            if arg.choices:
                bad_values.append("not-a-choice")
        else:
            bad_values += ["1", True, False, math.nan, math.inf, -math.inf]
            if arg.max is not None:
                bad_values.append(arg.max + 1)
            if arg.min is not None:
                bad_values.append(arg.min - 1)
            if arg.type == "i":
                bad_values.append((arg.min or 0) + 0.5)
        for bad in bad_values:
            args = list(good)
            args[i] = bad
            with pytest.raises(CommandError):
                parse(address, args)
        if not arg.optional:
            with pytest.raises(CommandError):
                parse(address, good[:i])  # missing
    if not spec.settable:
        with pytest.raises(CommandError, match="read only"):
            parse(address, [1])


def test_path_index_range_and_unknown_addresses():
    assert parse("/keyframe/16/jump", []).path == {"n": 16}
    assert parse("/latent/dir/8", [0.5]).index("k") == 8
    for address in [
        "/keyframe/0/jump",
        "/keyframe/17/jump",
        "/keyframe/x/jump",
        "/nope",
        "",
        "/keyframe/3",
    ]:
        with pytest.raises(CommandError):
            parse(address, [])
    with pytest.raises(CommandError):
        parse(123, [])  # type: ignore[arg-type]
    with pytest.raises(CommandError):
        parse("/latent/xy", "0.5")  # type: ignore[arg-type]


def test_query_is_a_single_question_mark():
    command = parse("/latent/xy", ["?"])
    assert command.query and command.args == ()
    assert parse("/tempo/beat", ["?"]).query
    with pytest.raises(CommandError, match="cannot be queried"):
        parse("/keyframe/3/jump", ["?"])
    with pytest.raises(CommandError):
        parse("/latent/xy", ["?", "?"])


def test_whole_floats_accepted_for_ints_as_touchosc_sends_them():
    assert parse("/latent/wander", [1.0]).args == (1,)
    assert isinstance(parse("/latent/wander", [1.0]).args[0], int)
    assert parse("/latent/xy", [0, 1]).args == (0.0, 1.0)


def test_describe_lists_every_command():
    described = describe()
    assert [d["address"] for d in described] == [s.pattern for s in COMMANDS]
    jump = next(d for d in described if d["address"] == "/keyframe/{n}/jump")
    assert jump["path"] == {"n": {"min": 1, "max": 16}}
    for item in described:
        assert item["doc"] and "\n" not in str(item["doc"])


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(spec=st.sampled_from(COMMANDS), args=st.lists(values, max_size=4))
def test_random_arguments_either_parse_cleanly_or_raise_command_error(spec, args):
    try:
        command = parse(_concrete(spec.pattern), args)
    except CommandError:
        return
    for value in command.args:
        if isinstance(value, float):
            assert math.isfinite(value)
        assert not isinstance(value, bool)


NUMERIC = [spec for spec in COMMANDS if spec.settable and any(a.type != "s" for a in spec.args)]


@pytest.mark.parametrize("spec", NUMERIC, ids=lambda s: s.pattern)
@pytest.mark.parametrize("huge", [10**400, -(10**400)], ids=["10^400", "-10^400"])
def test_an_integer_no_float_can_hold_is_a_command_error(spec, huge):
    # JSON reads 10^400 as a Python int; float() of it raises OverflowError.
    args = [huge if arg.type != "s" else _good(arg) for arg in spec.args]
    with pytest.raises(CommandError, match="too large"):
        parse(_concrete(spec.pattern), args)
