import math

import pytest

from guild_jupyter.errors import FlagError
from guild_jupyter.model.flags import (
    FlagDef,
    coerce_flag,
    parse_flag_assignments,
    parse_flag_text,
    resolve_flags,
)


@pytest.mark.parametrize(
    "text,value",
    [
        ("1", 1),
        ("-3", -3),
        ("1.0", 1.0),
        ("1e-3", 0.001),
        (".5", 0.5),
        ("2.", 2.0),
        ("true", True),
        ("False", False),
        ("yes", True),
        ("no", False),
        ("null", None),
        ("adam", "adam"),
        ("'1'", "1"),
        ('"a b"', "a b"),
        ("", ""),
        ("[1, 2.5, x]", [1, 2.5, "x"]),
        ("[]", []),
        ("['a,b', c]", ["a,b", "c"]),
        ("uniform[0:1]", "uniform[0:1]"),
        ("[0.1:1]", "[0.1:1]"),
    ],
)
def test_guild_decoding(text, value):
    assert parse_flag_text(text) == value
    assert type(parse_flag_text(text)) is type(value)


def test_nan_and_inf_are_floats():
    assert math.isnan(parse_flag_text("nan"))
    assert parse_flag_text("-inf") == float("-inf")


def test_assignments():
    assert parse_flag_assignments(["lr=0.1", "opt=adam", "n=3", "s="]) == {
        "lr": 0.1,
        "opt": "adam",
        "n": 3,
        "s": "",
    }
    with pytest.raises(FlagError, match="expected NAME=VALUE, got 'lr'"):
        parse_flag_assignments(["lr"])
    with pytest.raises(FlagError, match="invalid flag name"):
        parse_flag_assignments(["1x=3"])
    with pytest.raises(FlagError, match="unbalanced"):
        parse_flag_text("[1, 'a]")


@pytest.mark.parametrize(
    "value,flag_type,expected",
    [
        ("1", "float", 1.0),
        (1, "float", 1.0),
        ("2", "int", 2),
        (2.0, "int", 2),
        ("1", "str", "1"),
        ("true", "bool", True),
        (1, "bool", True),
        ("[1,2]", "list", [1, 2]),
        ("null", "int", None),
        ("0.01", None, 0.01),
    ],
)
def test_coercion(value, flag_type, expected):
    got = coerce_flag("f", value, flag_type)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "value,flag_type,message",
    [
        ("abc", "float", "flag 'f' expects a float, got 'abc'"),
        ("2.5", "int", "flag 'f' expects an int, got '2.5'"),
        (True, "int", "flag 'f' expects an int, got True"),
        ("maybe", "bool", "flag 'f' expects a bool, got 'maybe'"),
        ("3", "list", "flag 'f' expects a list, got '3'"),
    ],
)
def test_wrong_types_give_one_line_errors(value, flag_type, message):
    with pytest.raises(FlagError) as e:
        coerce_flag("f", value, flag_type)
    assert str(e.value) == message


def test_resolve_applies_defaults_and_rejects_unknown_and_missing():
    defs = {
        "lr": FlagDef("lr", 0.1),
        "epochs": FlagDef("epochs", 10),
        "data": FlagDef("data", required=True),
    }
    assert resolve_flags(defs, {"lr": "0.5", "data": "x"}) == {"lr": 0.5, "epochs": 10, "data": "x"}
    with pytest.raises(FlagError, match="unknown flag 'lrr' for operation .*did you mean 'lr'"):
        resolve_flags(defs, {"lrr": 1, "data": "x"})
    with pytest.raises(FlagError, match="flag 'data' is required"):
        resolve_flags(defs, {})


def test_constraints():
    d = FlagDef("opt", "adam", choices=["adam", "sgd"])
    assert d.check("sgd") == "sgd"
    with pytest.raises(FlagError, match="is not one of 'adam', 'sgd'"):
        d.check("rmsprop")
    with pytest.raises(FlagError, match="below the minimum"):
        FlagDef("lr", 0.1, min=0.0).check("-1")
