"""Scenario definitions: load a YAML preset, check every key, resolve defaults.

A scenario says who is reached (population, entry mix over channels), how the
channels feed each other (join probabilities and delays), how often each
channel touches a member, how likely a touch is to trigger a purchase and after
what delay, the catalogue, coupons/experiments and the id fragmentation.
Presets live in ``synthetic/scenarios/*.yaml`` (shipped as package data under
``privdomain/scenarios``). :func:`load_scenario` validates every key and raises
:class:`ScenarioError` naming the key and the broken rule.

Scenario files are read strictly (:class:`StrictLoader`): UTF-8 text of at most
1 MB; no YAML aliases or merge keys (so an alias bomb fails at its first alias);
no duplicate keys (named with their line); keys are text; dates stay text until the
checker reads them (``2024-02-30`` is an error naming the key); numbers must be
finite. A message shows at most 200 characters of an offending value.

Examples
--------
>>> from privdomain.simulate.scenario import load_scenario, list_scenarios
>>> list_scenarios()
['apparel', 'beauty', 'eyewear', 'sportswear', 'tea']
>>> sc = load_scenario("tea")
>>> sc.name, sc.start.isoformat()
('tea', '2024-01-01')
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import PrivdomainError, UsageError, short_repr

__all__ = ["Scenario", "ScenarioError", "start_ns", "StrictLoader", "check_name", "list_scenarios", "load_scenario", "looks_like_path",
           "parse_scenario", "read_yaml"]

AD_SURFACES = ["moments_ad", "search_ad", "channels_ad"]
#: switchable channel families the simulator knows, in the order of the membership graph
SWITCHABLE = [*AD_SURFACES, "store", "guide", "official_account", "group", "live", "sms", "qr_code", "fission"]
#: channels a person can be acquired through
ENTRY_CHANNELS = [*AD_SURFACES, "store", "official_account", "mini_program", "fission"]
#: which channels each member channel may be joined from
JOIN_PARENTS = {
    "guide": [*AD_SURFACES, "store"],
    "official_account": [*AD_SURFACES, "store", "guide", "mini_program", "fission"],
    "group": ["official_account", "guide"],
    "live": ["official_account", "group"],
}
HEADLINES = ["touchpoints_per_buyer", "repurchase_lift", "roi_30d_over_same_day", "article_rates", "guide_order_share"]


class ScenarioError(PrivdomainError, ValueError):
    """A scenario file breaks a rule; the message names the file, the key and the rule."""


#: largest scenario file read (a scenario is a few kB; this bounds memory and time)
MAX_FILE_BYTES = 1_000_000
#: deepest nesting of YAML collections read (a scenario nests four levels)
MAX_DEPTH = 32
#: largest population a scenario may ask for
MAX_PERSONS = 10**9
#: a scenario name: letters, digits, ``_``, ``-`` and ``.`` (no ``..``), at most 64 characters
NAME_PATTERN = re.compile(r"[^\W_][\w.-]{0,63}")


def check_name(name: Any, source: str = "scenario") -> str:
    """``name`` if it is a safe scenario name (it names ``synthetic/data/<name>``), else ScenarioError.

    A name is a single folder name: it starts with a letter or digit and holds only
    letters, digits, ``_``, ``-`` and ``.``, never ``..``; so no ``/``, ``\\``, absolute
    path or parent folder can take the default output out of ``synthetic/data/``.

    >>> check_name("tea")
    'tea'
    >>> check_name("../../etc")
    Traceback (most recent call last):
    ...
    privdomain.simulate.scenario.ScenarioError: scenario: name: must be a plain folder name (letters, digits, _ - .; no '/', '\\' or '..') (got '../../etc')
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ScenarioError(f"{source}: name: must be a plain folder name (letters, digits, _ - .; "
                            f"no '/', '\\' or '..') (got {short_repr(name)})")
    return name


class StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses what a scenario never needs and an attacker would use.

    * aliases (``*name``) and merge keys (``<<``): an alias bomb fails at its first alias,
      in bounded time and memory;
    * duplicate keys in a mapping (named with both lines) and keys that are not text;
    * nesting deeper than :data:`MAX_DEPTH`;
    * dates are not resolved (they stay text and are checked where a date is expected,
      so an impossible date is named with its key).
    """

    yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream, source: str = "scenario"):
        super().__init__(stream)
        self.source = source
        self._depth = 0

    def _fail(self, mark, problem: str) -> None:
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ScenarioError(f"{self.source}: {problem}{where}")

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            self._fail(event.start_mark, f"YAML aliases are not allowed (found *{short_repr(event.anchor, 40)[1:-1]})")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            self._fail(self.peek_event().start_mark, f"nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._fail(key_node.start_mark, "YAML merge keys (<<) are not allowed")
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                self._fail(key_node.start_mark, f"key {short_repr(key)} is not text (quote it)")
            if key in seen:
                self._fail(None, f"duplicate key {short_repr(key)} at lines {seen[key]} and {line}")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: StrictLoader, node: yaml.ScalarNode) -> int:
    if len(node.value) > 1000:  # Python refuses to read integers of more than 4300 digits
        loader._fail(node.start_mark, f"a number of {len(node.value)} characters is too long")
    return yaml.SafeLoader.construct_yaml_int(loader, node)


StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def read_yaml(path: str | os.PathLike) -> Any:
    """Read a scenario file with :class:`StrictLoader`; every failure is a ScenarioError naming the file."""
    path = Path(path)
    name = str(path)
    try:
        if path.is_dir():
            raise ScenarioError(f"{name}: is a folder, not a scenario file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(f"{name}: {size:,} bytes is too large for a scenario file "
                                f"(at most {MAX_FILE_BYTES:,})")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{name}: no such scenario file") from None
    except OSError as e:
        raise ScenarioError(f"{name}: cannot be read ({e.strerror or e})") from None
    if not raw.strip():
        raise ScenarioError(f"{name}: the scenario file is empty")
    if b"\x00" in raw:
        at = raw.index(b"\x00")
        raise ScenarioError(f"{name}: not a text file (a NUL byte at byte offset {at}); "
                            f"a scenario is UTF-8 YAML text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ScenarioError(f"{name}: not valid UTF-8 text: byte offset {e.start} (line {line}, "
                            f"byte {raw[e.start:e.start + 1]!r}) cannot be decoded; re-save the file as "
                            f"UTF-8 (a GBK or GB18030 file must be converted)") from None
    loader = None
    try:
        loader = StrictLoader(text.removeprefix("\ufeff"), source=path.name)
        return loader.get_single_data()
    except yaml.YAMLError as e:
        text = " ".join(str(e).split())
        raise ScenarioError(f"{path.name}: not valid YAML: {text[:400]}{'...' if len(text) > 400 else ''}") from None
    except RecursionError:
        raise ScenarioError(f"{path.name}: nested too deeply to be a scenario") from None
    finally:
        if loader is not None:
            loader.dispose()


def _presets_dir() -> Path:
    """The bundled presets: ``privdomain/scenarios``, package data of the installed package.

    In a source checkout it is a link to ``synthetic/scenarios/`` (where the presets are
    edited), so an editable install reads them as they are being edited.
    """
    return Path(str(resources.files("privdomain") / "scenarios"))


def list_scenarios() -> list[str]:
    """Names of the bundled presets.

    >>> "beauty" in list_scenarios()
    True
    """
    return sorted(p.stem for p in _presets_dir().glob("*.yaml"))


# ---------------------------------------------------------------- the rules
# A rule is (kind, extra): "num" >= lo [<= hi], "int", "prob", "date", "str", "dict", "list".
NUM = ("num", 0.0, None)
PROB = ("num", 0.0, 1.0)
POS = ("pos", 0.0, None)
INT1 = ("int", 1, None)
INT0 = ("int", 0, None)
#: longest referral chain the simulator follows (each level is one more pass over the block)
MAX_FISSION_DEPTH = 10
DELAY = {"median_days": POS, "sigma": NUM}

DEFAULTS: dict[str, Any] = {
    "title": "",
    "description": "",
    "persons": 10_000,
    "block_size": 20_000,
    "cycle_days": 30.0,
    "traits": {"interest_shape": 2.0, "affinity_sigma": 0.4, "lifetime_days": 365.0, "lifetime_shape": 2.0,
               "organic_share": 0.0},
    "mini_program": {"visits_per_month": 0.3, "conversion": 0.02, "delay": {"median_days": 0.05, "sigma": 1.0}},
    "fission": {"depth": 3},
    "orders": {"pay_rate": 0.9, "refund_rate": 0.04, "refund_delay_days": 5.0, "second_item_rate": 0.15},
    # browsing that ends in no purchase (docs/simulator.md, "Browsing, carts and live traffic"): a Mini
    # Program visit views a product (view_rate), a browsing view adds to cart (cart_rate) and the cart is
    # abandoned; a buyer's cart is ordered with checkout_rate (she abandoned carts before); a live viewer opens the Mini Program from the stream (live_visit_rate) and clicks a product
    # (live_click_rate); a viewer came through the session's warm-up page (warmup_rate) up to
    # warmup_hours before the start; a viewer watches the replay after the end (replay_rate)
    "browsing": {"view_rate": 0.5, "cart_rate": 0.1, "checkout_rate": 0.4, "live_visit_rate": 0.35, "live_click_rate": 0.6,
                 "warmup_rate": 0.3, "warmup_hours": 24.0, "replay_rate": 0.15},
    "ids": {"missing": {"platform": 0.05, "membership": 0.3, "wecom": 0.1}},
    "experiments": {},
}

SECTION_RULES: dict[str, dict[str, Any]] = {
    "ad": {"campaigns": INT1, "budget_yuan": NUM, "views": ("num", 1.0, None), "view_days": POS, "ctr": PROB,
           "conversion": PROB, "delay": DELAY},
    "store": {"stores": INT1, "visits_per_month": NUM, "conversion": PROB, "join_delay_days": NUM},
    "guide": {"join": "join", "join_delay_days": NUM, "guides_per_store": INT1, "chats_per_week": NUM,
              "conversion": PROB, "delay": DELAY},
    "official_account": {"join": "join", "join_delay_days": NUM, "articles_per_week": NUM, "open_rate": PROB,
                         "click_rate": PROB, "conversion_rate": PROB, "delay": DELAY},
    "group": {"join": "join", "join_delay_days": NUM, "messages_per_week": NUM, "conversion": PROB, "delay": DELAY},
    "live": {"join": "join", "join_delay_days": NUM, "sessions_per_month": NUM, "view_rate": PROB,
             "interact_rate": PROB, "conversion": PROB, "hours": POS},
    "mini_program": {"visits_per_month": NUM, "conversion": PROB, "delay": DELAY},
    "sms": {"per_month": NUM, "conversion": PROB, "delay": DELAY},
    "qr_code": {"scan_rate": PROB, "scan_delay_days": POS, "conversion": PROB, "delay": DELAY},
    "fission": {"share_rate": PROB, "accept_rate": PROB, "conversion": PROB, "friend_delay_days": POS,
                "depth": ("int", 1, MAX_FISSION_DEPTH)},
    "orders": {"pay_rate": PROB, "refund_rate": PROB, "refund_delay_days": POS, "second_item_rate": PROB},
    "browsing": {"view_rate": PROB, "cart_rate": PROB, "checkout_rate": PROB, "live_visit_rate": PROB, "live_click_rate": PROB,
                 "warmup_rate": PROB, "warmup_hours": POS, "replay_rate": PROB},
    "traits": {"interest_shape": POS, "affinity_sigma": NUM, "lifetime_days": POS, "lifetime_shape": POS,
               "organic_share": PROB},
}
PRODUCT_RULES = {"name": ("str",), "category": ("str",), "price_yuan": POS, "weight": POS, "new": ("bool",)}
TIER_RULES = {"min_purchases": INT0, "max_purchases": INT0, "multiplier": POS, "discount": PROB}
COUPON_RULES = {"start": ("date",), "days": INT1, "holdout": PROB, "tiers": "tiers"}
ARTICLE_EXP_RULES = {"start": ("date",), "days": INT1, "holdout": PROB, "click_multiplier": POS}
LIFT_RULES = {"holdout": PROB, "start": ("date",), "days": INT1, "unit": ("str",)}
#: channels a lift test may withhold (see :mod:`privdomain.simulate.lift`)
LIFT_CHANNELS = [*AD_SURFACES, "official_account", "group", "guide", "live", "sms", "fission"]
TOP_KEYS = {"name", "title", "description", "calibration", "start", "end", "persons", "block_size", "cycle_days",
            "entry", "traits", "products", "orders", "browsing", "ids", "experiments", "lift_tests", "mini_program",
            "retarget", *SWITCHABLE}
#: a retargeting campaign on a lookalike audience against a normal one (see :mod:`privdomain.simulate.retarget`)
RETARGET_RULES = {"start": ("date",), "days": INT1, "seed_days": INT1, "audience": PROB, "treat": PROB,
                  "response": PROB, "reactivation": PROB, "cost_fen": POS, "target": POS, "tolerance": POS}
RETARGET_DEFAULTS = {"days": 14, "seed_days": 90, "audience": 0.1, "treat": 0.5, "response": 0.08,
                     "reactivation": 0.1, "cost_fen": 1500.0, "target": 1.0, "tolerance": 0.2}
CALIBRATION_RULES = {"case": ("str",), "figure": ("str",), "headline": ("str",), "target": NUM, "tolerance": POS,
                     "persons": INT1}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Section dicts hold resolved values (defaults filled in).

    ``channels`` lists the switchable channel families present, in graph order.
    """

    name: str
    title: str
    description: str
    calibration: dict[str, Any]
    start: dt.date
    end: dt.date
    persons: int
    block_size: int
    cycle_days: float
    entry: dict[str, float]
    traits: dict[str, float]
    sections: dict[str, dict[str, Any]]
    products: list[dict[str, Any]]
    orders: dict[str, float]
    ids: dict[str, Any]
    experiments: dict[str, dict[str, Any]]
    source: str = ""
    channels: list[str] = field(default_factory=list)
    lift_tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    retarget: dict[str, Any] = field(default_factory=dict)
    browsing: dict[str, float] = field(default_factory=lambda: dict(DEFAULTS["browsing"]))

    @property
    def days(self) -> int:
        """Length of the simulated period in days (end inclusive)."""
        return (self.end - self.start).days + 1

    def has(self, channel: str) -> bool:
        return channel in self.sections

    def to_dict(self) -> dict[str, Any]:
        """The resolved parameters as plain JSON-able data."""
        out = {
            "name": self.name, "title": self.title, "description": self.description,
            "calibration": self.calibration, "start": self.start.isoformat(), "end": self.end.isoformat(),
            "persons": self.persons, "block_size": self.block_size, "cycle_days": self.cycle_days,
            "entry": self.entry, "traits": self.traits, "products": self.products, "orders": self.orders,
            "browsing": self.browsing, "ids": self.ids, "channels": self.channels,
            "experiments": {k: _jsonable(v) for k, v in self.experiments.items()},
        }
        if self.lift_tests:
            out["lift_tests"] = {k: _jsonable(v) for k, v in self.lift_tests.items()}
        if self.retarget:
            out["retarget"] = _jsonable(self.retarget)
        out.update({k: v for k, v in self.sections.items()})
        return _jsonable(out)

    def replace(self, **changes: Any) -> Scenario:
        """A copy with some top-level fields changed (re-validated)."""
        raw = self.to_dict()
        raw.pop("channels", None)
        raw.update(changes)
        return parse_scenario(raw, source=self.source)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    if isinstance(x, dt.date):
        return x.isoformat()
    return x


def load_scenario(scenario: str | os.PathLike | Scenario) -> Scenario:
    """Load and validate a preset by name, a YAML path, or pass a Scenario through.

    Raises
    ------
    ScenarioError
        Naming the file, the key (dotted path) and the rule it breaks.

    Examples
    --------
    >>> load_scenario("beauty").channels[:2]
    ['moments_ad', 'search_ad']
    """
    if isinstance(scenario, Scenario):
        check_name(scenario.name, scenario.source or "scenario")
        return scenario
    path = _scenario_path(scenario)
    return parse_scenario(read_yaml(path), source=path.name)


def looks_like_path(text: str) -> bool:
    """A scenario given as text is a file when it looks like a path (``/``, ``\\``, ``.yaml``, ``.yml``).

    Anything else is a preset name, whatever the working directory holds: a folder or
    file called ``beauty`` there does not hijack the preset ``beauty``.

    >>> looks_like_path("beauty"), looks_like_path("my/beauty"), looks_like_path("beauty.yaml")
    (False, True, True)
    """
    return "/" in text or "\\" in text or text.lower().endswith((".yaml", ".yml"))


def _scenario_path(scenario: str | os.PathLike) -> Path:
    """The file of a preset name or a scenario path (see :func:`looks_like_path`)."""
    if isinstance(scenario, os.PathLike):
        return Path(scenario)
    if not isinstance(scenario, str):
        raise UsageError(f"scenario: must be a preset name, a YAML path or a Scenario "
                         f"(got {type(scenario).__name__} {short_repr(scenario)})")
    if looks_like_path(scenario):
        return Path(scenario)
    presets = list_scenarios()
    if scenario not in presets:
        hint = UsageError.unknown("scenario", scenario, presets)
        raise ScenarioError(f"{hint}; a scenario file is given by a path (with '/' or ending in .yaml)")
    return _presets_dir() / f"{scenario}.yaml"


class _Checker:
    def __init__(self, source: str):
        self.source = source or "scenario"

    def fail(self, key: str, rule: str, value: Any = None) -> None:
        got = "" if value is None else f" (got {short_repr(value)})"
        raise ScenarioError(f"{self.source}: {short_repr(key)[1:-1]}: {rule}{got}")

    def value(self, key: str, v: Any, rule: Any) -> Any:
        kind = rule[0]
        if kind in ("num", "pos"):
            lo, hi = rule[1], rule[2]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.fail(key, "must be a number", v)
            try:
                finite = math.isfinite(float(v))
            except OverflowError:
                finite = False
            if not finite:
                self.fail(key, "must be a finite number", v)
            if kind == "pos" and not v > lo:
                self.fail(key, f"must be a number > {lo:g}", v)
            if kind == "num" and v < lo:
                self.fail(key, f"must be a number >= {lo:g}", v)
            if hi is not None and v > hi:
                self.fail(key, f"must be a number between {lo:g} and {hi:g}", v)
            return float(v)
        if kind == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                self.fail(key, "must be an integer", v)
            lo, hi = rule[1], rule[2]
            if hi is not None and not lo <= v <= hi:
                self.fail(key, f"must be an integer between {lo} and {hi}", v)
            if v < lo:
                self.fail(key, f"must be an integer >= {lo}", v)
            return int(v)
        if kind == "str":
            if not isinstance(v, str):
                self.fail(key, "must be text", v)
            return v
        if kind == "bool":
            if not isinstance(v, bool):
                self.fail(key, "must be true or false", v)
            return v
        if kind == "date":
            if isinstance(v, dt.datetime):
                v = v.date()
            if isinstance(v, str):
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
                    self.fail(key, "must be a date YYYY-MM-DD", v)
                try:
                    v = dt.date.fromisoformat(v)
                except ValueError as e:
                    self.fail(key, f"is not a real date ({e})", v)
            if not isinstance(v, dt.date):
                self.fail(key, "must be a date YYYY-MM-DD", v)
            return v
        raise AssertionError(kind)  # pragma: no cover

    def mapping(self, key: str, v: Any) -> dict:
        if not isinstance(v, dict):
            self.fail(key, "must be a mapping of keys to values", v)
        return v

    def section(self, key: str, v: Any, rules: dict[str, Any], defaults: dict | None = None,
                required: bool = True) -> dict[str, Any]:
        v = self.mapping(key, v)
        unknown = [k for k in v if k not in rules]
        if unknown:
            self.fail(f"{key}.{unknown[0]}", f"unknown key (allowed: {', '.join(rules)})")
        merged = {**copy.deepcopy(defaults or {}), **v}
        out: dict[str, Any] = {}
        for k, rule in rules.items():
            if k not in merged:
                if required:
                    self.fail(f"{key}.{k}", "required key is missing")
                continue
            sub = f"{key}.{k}"
            if isinstance(rule, dict):
                out[k] = self.section(sub, merged[k], rule)
            elif rule in ("join", "tiers"):
                out[k] = merged[k]  # checked by the caller
            else:
                out[k] = self.value(sub, merged[k], rule)
        return out


def parse_scenario(raw: Any, source: str = "") -> Scenario:
    """Validate a scenario given as a dict (as read from YAML); fill defaults.

    >>> parse_scenario({"name": "x"}, source="x.yaml")
    Traceback (most recent call last):
    ...
    privdomain.simulate.scenario.ScenarioError: x.yaml: start: required key is missing
    """
    c = _Checker(source)
    if raw is None:
        c.fail("(top level)", "the scenario is empty")
    raw = c.mapping("(top level)", raw)
    unknown = sorted(str(k) for k in raw if k not in TOP_KEYS)
    if unknown:
        c.fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(TOP_KEYS))})")
    for k in ("name", "start", "end", "entry", "products"):
        if k not in raw:
            c.fail(k, "required key is missing")
    name = check_name(c.value("name", raw["name"], ("str",)), c.source)
    start = c.value("start", raw["start"], ("date",))
    end = c.value("end", raw["end"], ("date",))
    if end <= start:
        c.fail("end", f"must be after start ({start.isoformat()})", end.isoformat())
    persons = c.value("persons", raw.get("persons", DEFAULTS["persons"]), INT1)
    if persons > MAX_PERSONS:
        c.fail("persons", f"must be an integer <= {MAX_PERSONS:_} (a larger population would not fit on disk)",
               persons)
    block_size = c.value("block_size", raw.get("block_size", DEFAULTS["block_size"]), INT1)
    if block_size > 1_000_000:
        c.fail("block_size", "must be an integer <= 1000000", block_size)
    cycle = c.value("cycle_days", raw.get("cycle_days", DEFAULTS["cycle_days"]), POS)
    sections: dict[str, dict[str, Any]] = {}
    for ch in [*SWITCHABLE, "mini_program"]:
        if ch not in raw and ch != "mini_program":
            continue
        rules = SECTION_RULES["ad" if ch in AD_SURFACES else ch]
        sections[ch] = c.section(ch, raw.get(ch, {}), rules,
                                 DEFAULTS.get(ch) if ch in ("mini_program", "fission") else None)
    for ch, sec in sections.items():
        if "join" in sec:
            join = c.mapping(f"{ch}.join", sec["join"])
            for parent, p in join.items():
                if parent not in JOIN_PARENTS[ch]:
                    c.fail(f"{ch}.join.{parent}", f"cannot join {ch} from {parent} "
                                                  f"(allowed: {', '.join(JOIN_PARENTS[ch])})")
                if parent not in sections and parent != "mini_program":
                    c.fail(f"{ch}.join.{parent}", f"joins from a channel the scenario does not have ({parent})")
                c.value(f"{ch}.join.{parent}", p, PROB)
            sec["join"] = {k: float(v) for k, v in join.items()}
    if "live" in sections and not ({"official_account", "group"} & set(sections)):
        c.fail("live", "live streams need an official_account or group section to reach viewers")
    entry = c.mapping("entry", raw["entry"])
    for k, v in entry.items():
        if k not in ENTRY_CHANNELS:
            c.fail(f"entry.{k}", f"not an entry channel (allowed: {', '.join(ENTRY_CHANNELS)})")
        if k not in sections and k != "mini_program":
            c.fail(f"entry.{k}", f"entry through a channel the scenario does not have ({k}); add a {k} section")
        c.value(f"entry.{k}", v, PROB)
    total = sum(float(v) for v in entry.values())
    if abs(total - 1.0) > 1e-6:
        c.fail("entry", "shares must sum to 1", round(total, 6))
    traits = c.section("traits", raw.get("traits", {}), SECTION_RULES["traits"], DEFAULTS["traits"])
    orders = c.section("orders", raw.get("orders", {}), SECTION_RULES["orders"], DEFAULTS["orders"])
    browsing = c.section("browsing", raw.get("browsing", {}), SECTION_RULES["browsing"], DEFAULTS["browsing"])
    prods = raw["products"]
    if not isinstance(prods, list) or not prods:
        c.fail("products", "must be a non-empty list of products", prods)
    products = []
    for i, p in enumerate(prods):
        sec = c.section(f"products[{i}]", p, PRODUCT_RULES, {"weight": 1.0, "new": False})
        products.append(sec)
    ids_raw = c.mapping("ids", raw.get("ids", DEFAULTS["ids"]))
    missing = c.section("ids.missing", ids_raw.get("missing", {}),
                        {"platform": PROB, "membership": PROB, "wecom": PROB}, DEFAULTS["ids"]["missing"])
    extra = [k for k in ids_raw if k != "missing"]
    if extra:
        c.fail(f"ids.{extra[0]}", "unknown key (allowed: missing)")
    experiments: dict[str, dict[str, Any]] = {}
    exps = c.mapping("experiments", raw.get("experiments", {}))
    for ename, e in exps.items():
        key = f"experiments.{ename}"
        if ename == "coupon_tiers":
            sec = c.section(key, e, COUPON_RULES)
            tiers = c.mapping(f"{key}.tiers", sec["tiers"])
            if not tiers:
                c.fail(f"{key}.tiers", "needs at least one tier")
            sec["tiers"] = {t: c.section(f"{key}.tiers.{t}", tv, TIER_RULES, {"discount": 0.0})
                            for t, tv in tiers.items()}
            for t, tv in sec["tiers"].items():
                if tv["max_purchases"] < tv["min_purchases"]:
                    c.fail(f"{key}.tiers.{t}.max_purchases", "must be >= min_purchases", tv["max_purchases"])
        elif ename == "article_redesign":
            if "official_account" not in sections:
                c.fail(key, "needs an official_account section")
            sec = c.section(key, e, ARTICLE_EXP_RULES)
        else:
            c.fail(key, "unknown experiment (allowed: coupon_tiers, article_redesign)")
        if not start <= sec["start"] <= end:
            c.fail(f"{key}.start", f"must lie between start and end ({start} .. {end})", sec["start"].isoformat())
        experiments[ename] = sec
    lift_tests: dict[str, dict[str, Any]] = {}
    for ch, e in c.mapping("lift_tests", raw.get("lift_tests", {})).items():
        key = f"lift_tests.{ch}"
        if ch not in LIFT_CHANNELS:
            c.fail(key, f"cannot hold out {ch} (allowed: {', '.join(LIFT_CHANNELS)})")
        if ch not in sections:
            c.fail(key, f"a lift test of a channel the scenario does not have ({ch})")
        sec = c.section(key, e, LIFT_RULES, {"start": start, "days": (end - start).days + 1, "unit": "person"})
        if sec["unit"] not in ("person", "city"):
            c.fail(f"{key}.unit", "must be person or city", sec["unit"])
        if not 0.0 < sec["holdout"] < 1.0:
            c.fail(f"{key}.holdout", "must lie strictly between 0 and 1", sec["holdout"])
        if not start <= sec["start"] <= end:
            c.fail(f"{key}.start", f"must lie between start and end ({start} .. {end})", sec["start"].isoformat())
        lift_tests[ch] = sec
    retarget: dict[str, Any] = {}
    if "retarget" in raw:
        retarget = c.section("retarget", raw["retarget"], RETARGET_RULES, RETARGET_DEFAULTS)
        if not start < retarget["start"] <= end:
            c.fail("retarget.start", f"must lie after start and on or before end ({start} .. {end})",
                   retarget["start"].isoformat())
        for k in ("audience", "treat"):
            if not 0.0 < retarget[k] < 1.0:
                c.fail(f"retarget.{k}", "must lie strictly between 0 and 1", retarget[k])
    cal = c.section("calibration", raw.get("calibration", {}), CALIBRATION_RULES,
                    {"case": "", "figure": "", "headline": "", "target": 0.0, "tolerance": 1.0, "persons": 10_000})
    if cal["headline"] and cal["headline"] not in HEADLINES:
        c.fail("calibration.headline", f"unknown headline (allowed: {', '.join(HEADLINES)})", cal["headline"])
    title = c.value("title", raw.get("title", ""), ("str",))
    desc = c.value("description", raw.get("description", ""), ("str",))
    channels = [ch for ch in SWITCHABLE if ch in sections]
    return Scenario(name=name, title=title, description=desc, calibration=cal, start=start, end=end,
                    persons=persons, block_size=block_size, cycle_days=cycle,
                    entry={k: float(v) for k, v in entry.items()}, traits=traits, sections=sections,
                    products=products, orders=orders, ids={"missing": missing}, experiments=experiments,
                    source=source, channels=channels, lift_tests=lift_tests, retarget=retarget,
                    browsing=browsing)


def start_ns(sc: Scenario) -> int:
    """The scenario's first instant (its start date at midnight, Beijing time) in nanoseconds since the epoch."""
    import pandas as pd

    from ..schema import TIMEZONE

    return int(pd.Timestamp(sc.start.isoformat(), tz=TIMEZONE).value)
