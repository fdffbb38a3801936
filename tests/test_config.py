"""Typed config loading: unknown keys and bad types are errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from recon_cli.config import deep_merge, from_dict, parse_override, to_dict
from recon_cli.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-4
    steps: int = 10


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    sizes: tuple[int, ...] = (1, 2)


def test_round_trip() -> None:
    cfg = from_dict(Outer, {"name": "y", "inner": {"lr": 1, "steps": 3}, "sizes": [4, 5, 6]})
    assert cfg == Outer("y", Inner(1.0, 3), (4, 5, 6))
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_unknown_key_named() -> None:
    with pytest.raises(ConfigError, match=r"config\.inner: unknown key\(s\) lrr"):
        from_dict(Outer, {"inner": {"lrr": 1}})


def test_bad_type_named() -> None:
    with pytest.raises(ConfigError, match=r"config\.inner\.steps: expected int"):
        from_dict(Outer, {"inner": {"steps": "many"}})


def test_override_and_merge() -> None:
    merged = deep_merge({"inner": {"lr": 1.0, "steps": 2}}, parse_override("inner.steps=7"))
    assert merged == {"inner": {"lr": 1.0, "steps": 7}}
    with pytest.raises(ConfigError):
        parse_override("novalue")


def test_atomic_write_leaves_no_temp_and_normal_mode(tmp_path) -> None:
    import os
    import stat

    from recon_cli.io.atomic import atomic_write_text

    target = tmp_path / "out.txt"
    atomic_write_text(target, "hello")
    assert target.read_text() == "hello"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
