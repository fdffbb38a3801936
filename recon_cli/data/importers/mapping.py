"""The reviewed model -> category table (``mapping.yaml``) and its matcher."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from recon_cli.data.categories import NAMES
from recon_cli.errors import ConfigError, InputError

_FIELDS = ("name", "tags", "room", "key")


@dataclass(frozen=True)
class Decision:
    """A category name, or None with the reason the model is skipped."""

    category: str | None
    reason: str = ""
    turn: tuple[str, str] | None = None   # (up, front) axes of the imported model to turn to +y, +x


@dataclass(frozen=True)
class _Rule:
    patterns: tuple[tuple[str, re.Pattern], ...]
    category: str | None
    reason: str

    def matches(self, fields: dict[str, str]) -> bool:
        return all(p.search(fields.get(f, "") or "") for f, p in self.patterns)


class Mapping:
    """The rules of one source: overrides, then skip rules, then category rules."""

    def __init__(self, source: str, table: dict) -> None:
        self.source = source
        self.overrides: dict[str, Decision] = {}
        for key, value in (table.get("overrides") or {}).items():
            if isinstance(value, dict):
                unknown = set(value) - {"category", "up", "front"}
                if unknown or "category" not in value:
                    raise ConfigError(f"mapping {source}: override {key!r} needs category (and optionally up, "
                                      f"front); unknown field(s) {sorted(unknown)}")
                turn = None
                if "up" in value or "front" in value:
                    from recon_cli.data.frame import frame_rotation

                    turn = (str(value.get("up", "+y")), str(value.get("front", "+x")))
                    try:
                        frame_rotation(*turn)  # validates the axes
                    except InputError as exc:
                        raise ConfigError(f"mapping {source}: override {key!r}: {exc.message}") from None
                self.overrides[str(key)] = Decision(_category(str(value["category"]), source), turn=turn)
                continue
            text = str(value).strip()
            if text.startswith("skip:"):
                self.overrides[str(key)] = Decision(None, text[5:].strip())
            else:
                self.overrides[str(key)] = Decision(_category(text, source))
        self.skip = [self._rule(r, None) for r in table.get("skip") or []]
        self.rules = [self._rule(r, _category(str(r.get("category", "")), source)) for r in table.get("rules") or []]

    def _rule(self, raw: dict, category: str | None) -> _Rule:
        if not isinstance(raw, dict):
            raise ConfigError(f"mapping {self.source}: a rule must be a mapping, got {raw!r}")
        unknown = set(raw) - set(_FIELDS) - {"category", "reason"}
        if unknown:
            raise ConfigError(f"mapping {self.source}: unknown rule field(s) {sorted(unknown)}")
        patterns = []
        for f in _FIELDS:
            if f in raw:
                try:
                    patterns.append((f, re.compile(str(raw[f]), re.IGNORECASE)))
                except re.error as exc:
                    raise ConfigError(f"mapping {self.source}: bad pattern {raw[f]!r} ({exc})") from None
        if not patterns:
            raise ConfigError(f"mapping {self.source}: a rule needs at least one of {', '.join(_FIELDS)}")
        return _Rule(tuple(patterns), category, str(raw.get("reason", "")))

    def decide(self, key: str, *, name: str = "", tags: str = "", room: str = "") -> Decision:
        """Category (or skip reason) of one model."""
        if key in self.overrides:
            return self.overrides[key]
        fields = {"name": name, "tags": tags, "room": room, "key": key}
        for rule in self.skip:
            if rule.matches(fields):
                return Decision(None, rule.reason or "skip rule")
        for rule in self.rules:
            if rule.matches(fields):
                return Decision(rule.category)
        return Decision(None, "no category rule matches")


def _category(text: str, source: str) -> str:
    name = text.strip().lower()
    if name not in NAMES:
        raise ConfigError(f"mapping {source}: unknown category {text!r}; valid: {', '.join(NAMES)}")
    return name


@lru_cache(maxsize=4)
def _load(path: str | None) -> dict:
    if path is None:
        text = resources.files("recon_cli.data.importers").joinpath("mapping.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read the mapping table ({str(exc).splitlines()[0]})", path=path) from exc
    if not isinstance(data, dict):
        raise ConfigError("the mapping table must map source names to rules", path=path)
    return data


def load_mapping(source: str, path: str | Path | None = None) -> Mapping:
    """The mapping of ``source`` from the shipped table (or ``path``)."""
    data = _load(None if path is None else str(path))
    return Mapping(source, data.get(source) or {})
