"""The suite's data files: ``templates/<Domain>.json`` and ``values.json``, read and validated.

``values.json`` holds the value texts of every canonical value (``_value_texts``); each domain's
``templates/<Domain>.json`` holds, per scenario type, its query templates and what the type implies
about its user (``type_rules`` -> ``TypeRules``). Every error is a ``ConfigError`` naming the file, the
entry and the fix. Version 0's files are frozen in ``suite_v0/``. ``penguin_gym.data.synthetic`` draws
from what is read here (and re-exports every name).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from penguin_gym.data.population import _KINDS, SUITE_VERSION, VALUE_SETS, _age_range
from penguin_gym.data.schema import ATTRIBUTES
from penguin_gym.data.taxonomy import TYPES_BY_DOMAIN
from penguin_gym.error import ConfigError

#: A value text: (text, severity offset, youngest age, oldest age, requires), where ``requires`` holds
#: (attribute index, allowed canonical value indices) pairs the rest of the profile must satisfy.
Variant = tuple[str, float, int, int, tuple[tuple[int, frozenset[int]], ...]]


@dataclass(frozen=True, slots=True)
class Template:
    """A query template and the canonical values a user must have for it to be drawn."""

    text: str
    requires: tuple[tuple[int, frozenset[int]], ...] = ()


@dataclass(frozen=True)
class TypeRules:
    """What one scenario type implies about its user, and its query templates (``templates/<Domain>.json``).

    Attributes:
        masks: Attribute -> bool array over ``VALUE_SETS[attribute]``: the values the situation allows.
            The generator samples such an attribute from the dependency graph conditioned on the mask.
        texts: (attribute, value index) -> texts that replace the generic ones for this type.
        extra: (attribute, value index) -> texts added to the generic ones for this type.
        suffixes: Attribute -> suffixes appended to the value's plain name ("Teacher, laid off in May").
        kinds: "cue" / "neutral" / "hidden" -> the templates.
    """

    masks: dict[str, np.ndarray] = field(default_factory=dict)
    texts: dict[tuple[str, int], tuple[Variant, ...]] = field(default_factory=dict)
    extra: dict[tuple[str, int], tuple[Variant, ...]] = field(default_factory=dict)
    suffixes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kinds: dict[str, tuple[Template, ...]] = field(default_factory=dict)


def _data_file(version: int, name: str) -> Any:
    root = resources.files("penguin_gym.data")
    return root / name if version == SUITE_VERSION else root / f"suite_v{version}" / name


def _value_index(where: str, attr: str, value: object) -> int:
    names = [v for v, _ in VALUE_SETS[attr]]
    if value not in names:
        near = difflib.get_close_matches(str(value), names, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"{where}: {value!r} is not a value of {attr!r}{hint}; valid: {names}")
    return names.index(str(value))


def _attribute(where: str, attr: object) -> str:
    if attr not in VALUE_SETS:
        near = difflib.get_close_matches(str(attr), list(ATTRIBUTES), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"{where}: unknown attribute {attr!r}{hint}")
    return str(attr)


def _requires(where: str, spec: object) -> tuple[tuple[int, frozenset[int]], ...]:
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"{where}: 'requires' must map attributes to lists of values, got {spec!r}")
    out = []
    for attr, values in spec.items():
        attr = _attribute(where, attr)
        if attr == "Emotional State":
            raise ConfigError(f"{where}: 'requires' cannot name 'Emotional State' (drawn after the template)")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: 'requires' {attr!r} must be a non-empty list of values")
        out.append((ATTRIBUTES.index(attr), frozenset(_value_index(where, attr, v) for v in values)))
    return tuple(out)


def _variant(where: str, item: object, version: int) -> Variant:
    """A value text from ``"text"``, ``[text, offset]`` or ``[text, offset, requires]``."""
    if isinstance(item, str):
        item = [item, 0.0]
    if not isinstance(item, list) or not 1 <= len(item) <= 3 or not isinstance(item[0], str) or not item[0].strip():
        raise ConfigError(f"{where}: a value text is 'text', [text, offset] or [text, offset, requires], got {item!r}")
    delta = item[1] if len(item) > 1 else 0.0
    if not isinstance(delta, (int, float)) or not -0.2 <= delta <= 0.2:
        raise ConfigError(f"{where}: severity offset of {item[0]!r} must be a number in [-0.2, 0.2], got {delta!r}")
    requires = _requires(where, item[2]) if len(item) == 3 else ()
    text = item[0].strip()
    return (text, float(delta), *_age_range(text, version), requires)


def _variants(where: str, items: object, version: int) -> tuple[Variant, ...]:
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: expected a non-empty list of texts, got {items!r}")
    return tuple(_variant(where, x, version) for x in items)


@cache
def _value_texts(version: int = SUITE_VERSION) -> dict[str, dict[str, tuple[Variant, ...]]]:
    path = _data_file(version, "values.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, dict[str, tuple[Variant, ...]]] = {}
    for attr, values in VALUE_SETS.items():
        if attr == "Age":
            continue
        if attr not in data:
            raise ConfigError(f"{path}: no value texts for attribute {attr!r}")
        out[attr] = {}
        for value, _ in values:
            if not data[attr].get(value):
                raise ConfigError(f"{path}: no texts for {attr!r} = {value!r}")
            variants = _variants(f"{path}: {attr!r} = {value!r}", data[attr][value], version)
            if variants[0][4]:
                raise ConfigError(
                    f"{path}: the first text of {attr!r} = {value!r} is the fallback: it takes no 'requires'"
                )
            out[attr][value] = variants
    return out


_TYPE_KEYS = frozenset({"implies", "texts", *_KINDS})


def _implied(where: str, attr: str, spec: object, rules: TypeRules, version: int) -> None:
    """Read one attribute of a type's ``implies`` into ``rules``."""
    names = [v for v, _ in VALUE_SETS[attr]]
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"{where}: expected {{value: null | [texts]}} or {{'except': [values]}}, got {spec!r}")
    mask = np.zeros(len(names), dtype=bool)
    if "except" in spec or "suffix" in spec:
        unknown = set(spec) - {"except", "suffix"}
        if unknown:
            raise ConfigError(f"{where}: with 'except'/'suffix' no other keys are allowed, got {sorted(unknown)}")
        mask[:] = True
        for v in spec.get("except", []):
            mask[_value_index(where, attr, v)] = False
        if "suffix" in spec:
            suffixes = spec["suffix"]
            if (
                attr == "Age"
                or not isinstance(suffixes, list)
                or not suffixes
                or not all(isinstance(x, str) and x.strip() for x in suffixes)
            ):
                raise ConfigError(
                    f"{where}: 'suffix' must be a non-empty list of texts (not for Age), got {suffixes!r}"
                )
            rules.suffixes[attr] = tuple(x.strip() for x in suffixes)
    else:
        for value, texts in spec.items():
            vi = _value_index(where, attr, value)
            mask[vi] = True
            if texts is not None:
                if attr == "Age":
                    raise ConfigError(f"{where}: Age bands take null, not texts")
                rules.texts[(attr, vi)] = _variants(f"{where} = {value!r}", texts, version)
    if not mask.any():
        raise ConfigError(f"{where}: rules out every value")
    rules.masks[attr] = mask


def _type_rules(where: str, entry: object, version: int) -> TypeRules:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object with 'cue', 'neutral' and 'hidden' templates")
    unknown = set(entry) - _TYPE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; valid: {sorted(_TYPE_KEYS)}")
    rules = TypeRules()
    for attr, spec in (entry.get("implies") or {}).items():
        attr = _attribute(f"{where}: implies", attr)
        _implied(f"{where}: implies {attr!r}", attr, spec, rules, version)
    for attr, spec in (entry.get("texts") or {}).items():
        attr = _attribute(f"{where}: texts", attr)
        if attr == "Age" or not isinstance(spec, dict):
            raise ConfigError(f"{where}: texts {attr!r} must map values to lists of texts (not for Age)")
        for value, texts in spec.items():
            vi = _value_index(f"{where}: texts {attr!r}", attr, value)
            rules.extra[(attr, vi)] = _variants(f"{where}: texts {attr!r} = {value!r}", texts, version)
    for kind in _KINDS:
        items = entry.get(kind)
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{where}: {kind!r} must be a non-empty list of templates")
        pool = []
        for j, item in enumerate(items):
            at = f"{where}: {kind}[{j}]"
            if isinstance(item, str):
                pool.append(Template(item))
            elif isinstance(item, dict) and set(item) <= {"text", "requires"} and isinstance(item.get("text"), str):
                pool.append(Template(item["text"], _requires(at, item["requires"]) if "requires" in item else ()))
            else:
                raise ConfigError(f"{at}: a template is a string or {{'text': ..., 'requires': {{...}}}}, got {item!r}")
            try:
                pool[-1].text.format(duration="", amount="")
            except (KeyError, IndexError, ValueError) as e:
                raise ConfigError(f"{at}: bad placeholder {e} (only {{duration}} and {{amount}})") from None
        if all(t.requires for t in pool):
            raise ConfigError(f"{where}: every {kind!r} template has 'requires'; keep one that fits every user")
        rules.kinds[kind] = tuple(pool)
    return rules


@cache
def type_rules(domain: str, version: int = SUITE_VERSION) -> dict[str, TypeRules]:
    """Scenario type name -> its ``TypeRules``, for one domain and suite version."""
    path = _data_file(version, f"templates/{domain}.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}: {e.msg}") from None
    expected = [t.name for t in TYPES_BY_DOMAIN[domain]]
    missing = [t for t in expected if t not in data]
    if missing:
        raise ConfigError(f"{path}: templates missing for scenario types {missing}")
    extra = [t for t in data if t not in expected]
    if extra:
        raise ConfigError(f"{path}: unknown scenario types {extra}")
    rules = {t: _type_rules(f"{path}: {t!r}", data[t], version) for t in expected}
    if version == 0 and any(r.masks or r.texts or r.extra or r.suffixes for r in rules.values()):
        raise ConfigError(f"{path}: suite v0 is frozen and implies nothing")
    return rules
