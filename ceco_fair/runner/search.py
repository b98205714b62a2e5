"""A protocol's ``search`` section: the space, reproducible draws, and the runs of both phases.

```yaml
search:
  trials: 6            # configurations per method and condition; trial 0 = the protocol's values
  seed: 0              # seeds the draws; the search runs use seeds[0]
  space:               # per key: {log_uniform: [a, b]} | {uniform: [a, b]} | {choice: [...]} | {int: [a, b]}
    train.optimizer.lr: {log_uniform: [3.0e-4, 3.0e-3]}   # a protocol key: applies to every method
    temperature: {choice: [0.05, 0.1, 0.2]}               # a method key: the methods that take it
    contex.label_weight: {uniform: [0.25, 0.75]}          # scoped to the method labelled contex
  select: [val_accuracy, val_worst_group, oracle]
```

A key is a protocol key (``train.*``, ``probe.*``: it must exist in the protocol's schema), a
method key (an argument of a method's loss, or ``ce_weight``) or ``label.key`` for one method.
Trial ``t > 0`` of a method draws each key from its own generator, seeded by
``(seed, crc32(label), t, crc32(key))``: the order of the keys in the file, and adding a method,
a trial or a key, change no other draw. Every drawn
configuration is built once while the protocol is validated, so a value a method refuses is an
error before any training.

The search phase trains every (condition, method, trial) at ``seeds[0]``; the final phase trains
each configuration some rule picked at every seed. Run ids name the trial
(``contex-rho0.9-trial3-seed1``), so the picked trial's search run is its final run at ``seeds[0]``
and a configuration picked by two rules runs once.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ceco_fair.common.config import check_keys, closest, coerce, from_mapping, to_plain
from ceco_fair.errors import CecoFairError, ProtocolError
from ceco_fair.evaluation.probe import ProbeConfig
from ceco_fair.losses import LOSSES, build_loss, loss_arguments
from ceco_fair.results.selection import RULES
from ceco_fair.training.groups import METHOD_OPTIONS, check_epochs, method_options
from ceco_fair.training.loop import MethodConfig, TrainConfig

DISTRIBUTIONS: Final = ("log_uniform", "uniform", "choice", "int")
SEARCH_KEYS: Final = ("trials", "seed", "space", "select")
SECTIONS: Final[Mapping[str, type]] = {"train": TrainConfig, "probe": ProbeConfig}
"""Protocol sections whose keys a search may vary, with their dataclasses."""
METHOD_SCOPED_KEYS: Final = ("ce_weight",)
DEFAULT_SELECT: Final = ("val_accuracy", "val_worst_group")


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


@dataclass(frozen=True)
class SearchConfig:
    """A validated ``search`` section.

    Attributes:
        trials: configurations per method and condition (trial 0: the protocol's values).
        seed: seeds the draws.
        space: key -> distribution, in the file's order.
        select: the selection rules (names of :data:`ceco_fair.results.selection.RULES`).
    """

    trials: int
    seed: int
    space: Mapping[str, Distribution]
    select: tuple[str, ...]

    def resolved(self) -> dict[str, Any]:
        """The section as plain data (saved in ``protocol.yaml``)."""
        return {
            "trials": self.trials,
            "seed": self.seed,
            "space": {key: {d.kind: list(d.args)} for key, d in self.space.items()},
            "select": list(self.select),
        }


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
    """The keys a search may vary for a method (none for ``ce``).

    A contrastive loss's arguments and ``ce_weight``, or a subgroup baseline's options.
    """
    if config.subgroup:
        return tuple(METHOD_OPTIONS[config.name])
    if not config.contrastive:
        return ()
    arguments = loss_arguments(config.name) if config.name in LOSSES else ()
    return (*arguments, *METHOD_SCOPED_KEYS)


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


def parse_search(raw: Any, methods: Sequence[tuple[str, MethodConfig]], sections: Mapping[str, Any]) -> SearchConfig:
    """Validate a ``search`` section.

    Args:
        raw: the section as parsed from YAML.
        methods: ``(label, config)`` of each method of the protocol.
        sections: the protocol's ``train`` and ``probe`` sections as plain data, defaults filled in.

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
    return SearchConfig(trials, seed, space, select)


def protocol_value(key: str, label: str, config: MethodConfig, sections: Mapping[str, Any]) -> Any:
    """The protocol's own value of ``key`` for a method (trial 0)."""
    if is_section_key(key):
        head, *parts = key.split(".")
        node: Any = sections[head]
        for part in parts:
            node = node[part]
        return node
    name = split_key(key)[1]
    if name == "ce_weight":
        return config.ce_weight
    if name in config.loss_kwargs:
        return config.loss_kwargs[name]
    resolved = getattr(build_loss(config.name, **config.loss_kwargs), name, None)  # the loss's own default
    if isinstance(resolved, int | float | str | bool):
        return resolved
    default = inspect.signature(LOSSES[config.name].__init__).parameters[name].default
    return None if default is inspect.Parameter.empty else default


def trial_values(
    search: SearchConfig, label: str, config: MethodConfig, trial: int, sections: Mapping[str, Any]
) -> dict[str, Any]:
    """The values of ``trial`` for the method ``label``: the protocol's for trial 0, else drawn."""
    keys = [key for key in search.space if applies_to(key, label, config)]
    if trial == 0:
        return {key: protocol_value(key, label, config, sections) for key in keys}
    method = zlib.crc32(label.encode("utf-8"))
    return {
        key: search.space[key].draw(
            np.random.default_rng([search.seed, method, trial, zlib.crc32(key.encode("utf-8"))])
        )
        for key in keys
    }


def method_with(label: str, config: MethodConfig, values: Mapping[str, Any]) -> MethodConfig:
    """The method's configuration with the drawn method keys applied."""
    loss_kwargs, ce_weight = dict(config.loss_kwargs), config.ce_weight
    for key, value in values.items():
        if is_section_key(key) or not applies_to(key, label, config):
            continue
        name = split_key(key)[1]
        if name == "ce_weight":
            ce_weight = coerce(value, float, f"search.space.{key}")
        else:
            loss_kwargs[name] = value
    return dataclasses.replace(config, loss_kwargs=loss_kwargs, ce_weight=ce_weight)


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
    for label, config in methods:
        for trial in range(1, search.trials):
            values = trial_values(search, label, config, trial, sections)
            _check_values(label, config, values, sections, f"search.space: trial {trial} of {label} ({values})")
        for key, distribution in search.space.items():
            if distribution.kind == "choice" and applies_to(key, label, config):
                for option in distribution.args:
                    _check_values(label, config, {key: option}, sections, f"search.space.{key}: {option!r} for {label}")


def _check_values(
    label: str, config: MethodConfig, values: Mapping[str, Any], sections: Mapping[str, Any], where: str
) -> None:
    """Build a method's loss and the protocol sections with ``values``; a :class:`ProtocolError` if refused."""
    try:
        updated = method_with(label, config, values)
        if updated.name in LOSSES:
            build_loss(updated.name, **updated.loss_kwargs)
        built = sections_with(sections, values)
        if updated.subgroup:
            options = method_options(updated.name, updated.loss_kwargs, label)
            check_epochs(updated.name, options, built["train"].epochs, label)
    except (ValueError, TypeError, CecoFairError) as error:
        raise ProtocolError(f"{where}: {error}") from None
