"""A protocol's ``search`` section: the space, reproducible draws, and the runs of both phases.

```yaml
search:
  trials: 6            # configurations per method, condition and repeat
  seed: 0              # seeds the draws (with the repeat: the hyper-parameter seed)
  sampler: stratified  # stratified (default) | random (the draws of protocols before it)
  repeats: 3           # whole searches, repeat r at seeds[r] (default 1)
  finals: repeat       # repeat: each repeat's pick is its result | reseed: one search's pick retrained per seed
  space:               # per key: {log_uniform: [a, b]} | {uniform: [a, b]} | {choice: [...]} | {int: [a, b]}
    train.optimizer.lr: {log_uniform: [3.0e-4, 3.0e-3]}   # a protocol key: applies to every method
    temperature: {choice: [0.05, 0.1, 0.2]}               # a method key: the methods that take it
    contex.label_weight: {uniform: [0.25, 0.75]}          # scoped to the method labelled contex
  select: [val_accuracy, val_worst_class, val_worst_group, oracle]
```

A key is a protocol key (``train.*``, ``probe.*``: it must exist in the protocol's schema), a
method key (an argument of a method's loss, or ``ce_weight``) or ``label.key`` for one method.

**A level field.** A protocol key and an unscoped method key (``temperature``) are *shared*: drawn
once per trial, every method that takes it gets that value, so trial ``t`` is one configuration the
methods share (SupCon and ConTeX at trial 3 train with the same lr, weight decay and τ). A scoped
key (``contex.label_weight``) is drawn for its method alone. Each key has its own generator, seeded
by ``(seed, repeat, crc32(key))`` (plus ``crc32(label)`` for a scoped key), so the order of the keys
in the file and adding a method or a key change no other draw.

``sampler: stratified`` (the default) spreads every trial over the space: a ``choice`` of k values
gives each value ``floor(T/k)`` or ``ceil(T/k)`` of the T trials, in a seeded order, and a range is
drawn by Latin-hypercube sampling (one draw in each of T equal-probability strata, strata shuffled
per key). Every trial is drawn, trial 0 included. ``sampler: random`` keeps the draws of protocols
written before it: trial 0 is the protocol's values, trial ``t > 0`` of a method draws each key
independently from ``(seed, crc32(label), t, crc32(key))``, so two methods never share a draw.

**Repeats** (DomainBed's protocol). ``repeats: R`` runs the whole search R times, repeat ``r``
with hyper-parameter seed ``(seed, r)`` and trial seed ``seeds[r]`` (data split, initialisation).
With ``finals: repeat`` (the default when R > 1) each rule's pick in repeat ``r`` is the result of
repeat ``r``: intervals and paired comparisons run over the repeats, with the variance of the
selection itself inside them; no run is retrained. With ``finals: reseed`` (the default, and the
only mode, when R = 1) the pick of one search is retrained at every later seed: the interval then
holds seed variance only, and every table says so.

Every drawn configuration is built once while the protocol is validated, so a value a method
refuses is an error before any training. Run ids name the trial and the seed
(``contex-rho0.9-trial3-seed1``): under ``reseed`` the picked trial's search run is its final run at
``seeds[0]`` and a configuration picked by two rules runs once; under ``repeat`` the seed names the
repeat.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from ceco_fair.common.config import check_keys, closest, coerce, from_mapping, to_plain
from ceco_fair.errors import CecoFairError, ProtocolError
from ceco_fair.evaluation.probe import ProbeConfig
from ceco_fair.results.layout import FINALS, FINALS_REPEAT, FINALS_RESEED
from ceco_fair.results.selection import RULES
from ceco_fair.training.config import TrainConfig
from ceco_fair.training.methods import CE_WEIGHT_KEY, MethodConfig

DISTRIBUTIONS: Final = ("log_uniform", "uniform", "choice", "int")
SEARCH_KEYS: Final = ("trials", "seed", "sampler", "repeats", "finals", "space", "select")
SAMPLERS: Final = ("stratified", "random")
"""``stratified``: every choice value tried, ranges by Latin-hypercube; ``random``: the earlier independent draws."""
SECTIONS: Final[Mapping[str, type]] = {"train": TrainConfig, "probe": ProbeConfig}
"""Protocol sections whose keys a search may vary, with their dataclasses."""
DEFAULT_SELECT: Final = ("val_accuracy", "val_worst_group")
REPEAT_ONE_SEED: Final = (
    "search.finals: 'repeat' with repeats: 1 uses only seed {first} of seeds {seeds}; set search.repeats: {count} "
    "(one whole search per seed) or search.finals: reseed (one search, its pick retrained at every seed)"
)
RESEED_REPEATS: Final = (
    "search.finals: 'reseed' retrains the pick of one search, but repeats is {repeats}; use finals: repeat "
    "(each repeat's pick is its result) or repeats: 1"
)


@dataclass(frozen=True)
class Distribution:
    """One key's distribution: ``kind`` in :data:`DISTRIBUTIONS` and its arguments (bounds or choices)."""

    kind: str
    args: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        """One value (a Python scalar)."""
        if self.kind == "log_uniform":
            return float(math.exp(rng.uniform(math.log(self.args[0]), math.log(self.args[1]))))
        if self.kind == "uniform":
            return float(rng.uniform(self.args[0], self.args[1]))
        if self.kind == "int":
            return int(rng.integers(self.args[0], self.args[1] + 1))
        return self.args[int(rng.integers(len(self.args)))]

    def stratified(self, count: int, rng: np.random.Generator) -> list[Any]:
        """``count`` values that cover the distribution: one per trial, in a seeded order.

        A ``choice`` of k values gives each value ``floor(count/k)`` or ``ceil(count/k)`` places (which
        values get the extra place is drawn too); a range is drawn by Latin-hypercube sampling: one
        uniform draw in each of ``count`` equal-probability strata, the strata in a random order.
        """
        if self.kind == "choice":
            order = rng.permutation(len(self.args))
            tiled = [self.args[int(order[i % len(self.args)])] for i in range(count)]
            return [tiled[int(i)] for i in rng.permutation(count)]
        quantiles = (rng.permutation(count) + rng.uniform(size=count)) / count
        low, high = self.args
        if self.kind == "log_uniform":
            return [float(math.exp(math.log(low) + q * (math.log(high) - math.log(low)))) for q in quantiles]
        if self.kind == "uniform":
            return [float(low + q * (high - low)) for q in quantiles]
        return [int(min(high, low + math.floor(q * (high - low + 1)))) for q in quantiles]


@dataclass(frozen=True)
class SearchConfig:
    """A validated ``search`` section.

    Attributes:
        trials: configurations per method, condition and repeat.
        seed: seeds the draws.
        space: key -> distribution, in the file's order.
        select: the selection rules (names of :data:`ceco_fair.results.selection.RULES`).
        sampler: one of :data:`SAMPLERS`.
        repeats: whole searches; repeat ``r`` trains at ``seeds[r]`` with hyper-parameter seed ``(seed, r)``.
        finals: one of :data:`FINALS`.
    """

    trials: int
    seed: int
    space: Mapping[str, Distribution]
    select: tuple[str, ...]
    sampler: str = "stratified"
    repeats: int = 1
    finals: str = FINALS_RESEED

    def resolved(self) -> dict[str, Any]:
        """The section as plain data (saved in ``protocol.yaml``)."""
        return {
            "trials": self.trials,
            "seed": self.seed,
            "sampler": self.sampler,
            "repeats": self.repeats,
            "finals": self.finals,
            "space": {key: {d.kind: list(d.args)} for key, d in self.space.items()},
            "select": list(self.select),
        }

    def repeat_seeds(self, seeds: Sequence[int]) -> list[int]:
        """The trial seed of each repeat: ``seeds[r]`` under ``repeat`` finals, ``seeds[0]`` alone under ``reseed``."""
        return list(seeds[: self.repeats])


def parse_distribution(raw: Any, path: str) -> Distribution:
    """``{kind: args}`` as a :class:`Distribution`; a :class:`ProtocolError` naming ``path`` otherwise."""
    shapes = "{log_uniform: [a, b]}, {uniform: [a, b]}, {choice: [...]} or {int: [a, b]}"
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise ProtocolError(f"{path}: expected one distribution, {shapes}; got {raw!r}")
    kind, args = next(iter(raw.items()))
    if kind not in DISTRIBUTIONS:
        raise ProtocolError(f"{path}: unknown distribution {kind!r}{closest(str(kind), DISTRIBUTIONS)}")
    where = f"{path}.{kind}"
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ProtocolError(f"{where}: expected a non-empty list of values, got {args!r}")
        return Distribution(kind, tuple(args))
    if not isinstance(args, list) or len(args) != 2:
        raise ProtocolError(f"{where}: expected a range [low, high], got {args!r}")
    bounds = tuple(coerce(value, int if kind == "int" else float, f"{where}[{i}]") for i, value in enumerate(args))
    low, high = bounds
    if not all(math.isfinite(bound) for bound in bounds):
        raise ProtocolError(f"{where}: expected finite bounds, got {args!r}")
    if low >= high:
        raise ProtocolError(f"{where}: the range [{low}, {high}] is empty or reversed; expected low < high")
    if kind == "log_uniform" and low <= 0:
        raise ProtocolError(f"{where}: a log-uniform range needs bounds > 0, got {low}")
    return Distribution(kind, bounds)


def method_keys(config: MethodConfig) -> tuple[str, ...]:
    """The keys a search may vary for a method (its class's :meth:`~ceco_fair.training.method.Method.search_keys`)."""
    return config.method_class.search_keys()


def split_key(key: str) -> tuple[str | None, str]:
    """A method key as ``(label, argument)``: ``label`` None for a key of every method that takes it.

    A label may hold dots (``ConTeX (tau=0.2)``); a loss argument does not, so the last dot splits.
    """
    label, _, argument = key.rpartition(".")
    return (label or None), argument


def is_section_key(key: str) -> bool:
    """Whether ``key`` names a protocol key (``train.*``, ``probe.*``) rather than a method's."""
    return key.partition(".")[0] in SECTIONS


def applies_to(key: str, label: str, config: MethodConfig) -> bool:
    """Whether the space's ``key`` varies the method labelled ``label``."""
    if is_section_key(key):
        return True
    scope, argument = split_key(key)
    return scope in (None, label) and argument in method_keys(config)


def check_key(key: str, labels_configs: Sequence[tuple[str, MethodConfig]], sections: Mapping[str, Any]) -> None:
    """Reject a space key that fits neither the protocol's schema nor any method's signature."""
    path = f"search.space.{key}"
    if is_section_key(key):
        head, _, rest = key.partition(".")
        node: Any = sections[head]
        for part in rest.split(".") if rest else []:
            if not isinstance(node, Mapping) or part not in node:
                valid = list(node) if isinstance(node, Mapping) else []
                raise ProtocolError(f"{path}: {part!r} is not a key of {head}{closest(part, valid)}")
            node = node[part]
        if isinstance(node, Mapping) or not rest:
            raise ProtocolError(f"{path}: {key} is a section, not a value")
        return
    labels = [label for label, _ in labels_configs]
    scope, argument = split_key(key)
    if scope is not None and scope not in labels:
        raise ProtocolError(f"{path}: {scope!r} is neither a method label nor train/probe{closest(scope, labels)}")
    if not any(applies_to(key, label, config) for label, config in labels_configs):
        takers = sorted({k for _, config in labels_configs for k in method_keys(config)})
        owner = f"method {scope!r}" if scope is not None else "any method of the protocol"
        raise ProtocolError(f"{path}: {argument!r} is not an argument of {owner}{closest(argument, takers)}")


def parse_search(
    raw: Any, methods: Sequence[tuple[str, MethodConfig]], sections: Mapping[str, Any], seeds: Sequence[int] = (0,)
) -> SearchConfig:
    """Validate a ``search`` section.

    Args:
        raw: the section as parsed from YAML.
        methods: ``(label, config)`` of each method of the protocol.
        sections: the protocol's ``train`` and ``probe`` sections as plain data, defaults filled in.
        seeds: the protocol's seeds (a repeat takes one each).

    Raises:
        ProtocolError: any invalid key or value, naming it.
    """
    if not isinstance(raw, Mapping):
        raise ProtocolError(f"search: expected a mapping with trials, seed, space and select, got {raw!r}")
    check_keys(raw, SEARCH_KEYS, "search")
    trials = coerce(raw.get("trials", 8), int, "search.trials")
    if trials < 1:
        raise ProtocolError(f"search.trials: expected at least 1, got {trials}")
    seed = coerce(raw.get("seed", 0), int, "search.seed")
    if seed < 0:
        raise ProtocolError(f"search.seed: expected a seed >= 0, got {seed}")
    space_raw = raw.get("space") or {}
    if not isinstance(space_raw, Mapping):
        raise ProtocolError(f"search.space: expected a mapping of key -> distribution, got {space_raw!r}")
    space = {}
    for key, value in space_raw.items():
        check_key(str(key), methods, sections)
        space[str(key)] = parse_distribution(value, f"search.space.{key}")
    select_raw = raw.get("select", list(DEFAULT_SELECT))
    select = tuple(coerce(select_raw if isinstance(select_raw, list) else [select_raw], list[str], "search.select"))
    if not select:
        raise ProtocolError("search.select: expected at least one rule")
    for index, rule in enumerate(select):
        if rule not in RULES:
            raise ProtocolError(f"search.select[{index}]: unknown selection rule {rule!r}{closest(rule, RULES)}")
    if len(set(select)) != len(select):
        raise ProtocolError(f"search.select: a rule is named twice in {list(select)}")
    sampler = raw.get("sampler", "stratified")
    if sampler not in SAMPLERS:
        raise ProtocolError(f"search.sampler: unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
    repeats = _parse_repeats(raw.get("repeats", 1), seeds)
    finals = raw.get("finals", FINALS_REPEAT if repeats > 1 else FINALS_RESEED)
    if finals not in FINALS:
        raise ProtocolError(f"search.finals: unknown mode {finals!r}; expected one of {', '.join(FINALS)}")
    if finals == FINALS_REPEAT and repeats == 1 and len(seeds) > 1:
        raise ProtocolError(REPEAT_ONE_SEED.format(first=seeds[0], seeds=list(seeds), count=len(seeds)))
    if finals == FINALS_RESEED and repeats > 1:
        raise ProtocolError(RESEED_REPEATS.format(repeats=repeats))
    return SearchConfig(trials, seed, space, select, str(sampler), repeats, str(finals))


def _parse_repeats(raw: Any, seeds: Sequence[int]) -> int:
    """``search.repeats``: an integer from 1 to the number of seeds (each repeat trains at its own seed)."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ProtocolError(f"search.repeats: expected an integer number of searches, got {raw!r}")
    if raw < 1:
        raise ProtocolError(f"search.repeats: expected at least 1, got {raw}")
    if raw > len(seeds):
        raise ProtocolError(
            f"search.repeats: {raw} repeats need {raw} seeds (repeat r trains at seeds[r]), "
            f"but the protocol gives {len(seeds)}: {list(seeds)}"
        )
    return raw


def protocol_value(key: str, label: str, config: MethodConfig, sections: Mapping[str, Any]) -> Any:
    """The protocol's own value of ``key`` for a method (trial 0)."""
    if is_section_key(key):
        head, *parts = key.split(".")
        node: Any = sections[head]
        for part in parts:
            node = node[part]
        return node
    name = split_key(key)[1]
    if name == CE_WEIGHT_KEY:
        return config.ce_weight
    return config.method_class.option_value(name, config.options)


def is_shared(key: str) -> bool:
    """Whether ``key`` is drawn once per trial for every method that takes it (not scoped to one label)."""
    return is_section_key(key) or split_key(key)[0] is None


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def stratified_column(search: SearchConfig, key: str, repeat: int) -> list[Any]:
    """Every trial's value of ``key`` in ``repeat`` under the stratified sampler (one generator per key).

    A shared key's generator is seeded by ``(seed, repeat, crc32(key))`` alone, so every method that
    takes it reads the same column; a scoped key's (``label.key``) name holds its label.
    """
    rng = np.random.default_rng([search.seed, repeat, _crc(key)])
    return search.space[key].stratified(search.trials, rng)


def trial_values(
    search: SearchConfig,
    label: str,
    config: MethodConfig,
    trial: int,
    sections: Mapping[str, Any],
    repeat: int = 0,
) -> dict[str, Any]:
    """The values of ``trial`` of ``repeat`` for the method ``label``.

    Stratified: the trial's entry of each key's column (:func:`stratified_column`). Random: the
    protocol's values for trial 0, else an independent draw per method, trial and key (repeat 0
    reproduces the draws of protocols written before repeats).
    """
    keys = [key for key in search.space if applies_to(key, label, config)]
    if search.sampler == "stratified":
        return {key: stratified_column(search, key, repeat)[trial] for key in keys}
    if trial == 0:
        return {key: protocol_value(key, label, config, sections) for key in keys}
    stream = [search.seed, _crc(label), trial]
    return {
        key: search.space[key].draw(np.random.default_rng([*stream, _crc(key), *([repeat] if repeat else [])]))
        for key in keys
    }


def method_with(label: str, config: MethodConfig, values: Mapping[str, Any]) -> MethodConfig:
    """The method's configuration with the drawn method keys applied."""
    options, ce_weight = dict(config.options), config.ce_weight
    for key, value in values.items():
        if is_section_key(key) or not applies_to(key, label, config):
            continue
        name = split_key(key)[1]
        if name == CE_WEIGHT_KEY:
            ce_weight = coerce(value, float, f"search.space.{key}")
        else:
            options[name] = value
    return dataclasses.replace(config, options=options, ce_weight=ce_weight)


def sections_with(sections: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``train`` / ``probe`` dataclasses with the drawn protocol keys applied (validated)."""
    built: dict[str, Any] = {}
    for head, cls in SECTIONS.items():
        plain = to_plain(sections[head])
        for key, value in values.items():
            first, _, rest = key.partition(".")
            if first != head:
                continue
            node = plain
            *parents, last = rest.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
        built[head] = from_mapping(cls, plain, head)
    return built


def check_trials(
    search: SearchConfig, methods: Sequence[tuple[str, MethodConfig]], sections: Mapping[str, Any]
) -> None:
    """Build every trial's configuration, and every ``choice`` option, once: a value a method refuses fails now.

    Raises:
        ProtocolError: naming the trial (or the key), the method and the value.
    """
    first = 0 if search.sampler == "stratified" else 1
    for label, config in methods:
        for key, distribution in search.space.items():
            if distribution.kind == "choice" and applies_to(key, label, config):
                for option in distribution.args:
                    _check_values(label, config, {key: option}, sections, f"search.space.{key}: {option!r} for {label}")
        for repeat in range(search.repeats):
            for trial in range(first, search.trials):
                values = trial_values(search, label, config, trial, sections, repeat)
                where = f"search.space: trial {trial}{_repeat_text(search, repeat)} of {label} ({values})"
                _check_values(label, config, values, sections, where)


def _repeat_text(search: SearchConfig, repeat: int) -> str:
    return f" of repeat {repeat}" if search.repeats > 1 else ""


def _check_values(
    label: str, config: MethodConfig, values: Mapping[str, Any], sections: Mapping[str, Any], where: str
) -> None:
    """Build a method's loss and the protocol sections with ``values``; a :class:`ProtocolError` if refused."""
    try:
        updated = method_with(label, config, values)
        cls = updated.method_class
        options = cls.check_options(updated.options, label)
        built = sections_with(sections, values)
        cls.check_epochs(options, built["train"].epochs, label)
    except (ValueError, TypeError, CecoFairError) as error:
        raise ProtocolError(f"{where}: {error}") from None


def draws_table(
    search: SearchConfig, methods: Sequence[tuple[str, MethodConfig]], sections: Mapping[str, Any]
) -> pd.DataFrame:
    """Every trial's drawn values, one row per (repeat, trial), for ``--dry-run``.

    A key is one column: a shared key's value is every method's that takes it, a scoped key names its
    method. Under ``sampler: random`` an unscoped key is drawn per method: a column each, ``label: key``.
    """
    rows = []
    for repeat in range(search.repeats):
        for trial in range(search.trials):
            row: dict[str, Any] = {"repeat": repeat, "trial": trial}
            for label, config in methods:
                for key, value in trial_values(search, label, config, trial, sections, repeat).items():
                    one_column = search.sampler == "stratified" or not is_shared(key)
                    row[key if one_column else f"{label}: {key}"] = value
            rows.append(row)
    return pd.DataFrame(rows)
