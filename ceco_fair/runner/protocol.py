"""Protocols: a YAML file, validated in full and expanded into a grid of runs before any training.

A protocol names a dataset, an encoder, a list of methods and the training, probe and evaluation
settings; lists of ρ values, attribute pairs and seeds expand into a grid of runs
(method × ρ/attribute × seed). Everything is checked here, so that a typo fails in a second with a
one-line message naming the key, not after an hour of training.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ceco_fair.common.config import check_keys, closest, coerce, from_mapping, to_plain
from ceco_fair.common.user_code import is_user_spec, spec_attribute
from ceco_fair.data.base import validation_labels
from ceco_fair.data.registry import (
    DATASETS,
    FACTORY_SEPARATOR,
    REQUIRED,
    dataset_class,
    dataset_option_types,
    dataset_options,
    preflight,
)
from ceco_fair.errors import CecoFairError, ProtocolError, with_prefix
from ceco_fair.evaluation.eval_config import EvalConfig
from ceco_fair.evaluation.probe import ProbeConfig
from ceco_fair.models.files import EncoderConfig, check_weights_file
from ceco_fair.results.layout import FINALS_REPEAT, PHASE_FINAL, PHASE_SEARCH, Phase
from ceco_fair.results.record import condition_label
from ceco_fair.results.selection import RULES, Picks
from ceco_fair.runner.search import (
    SearchConfig,
    check_trials,
    method_with,
    parse_search,
    sections_with,
    trial_values,
)
from ceco_fair.training.config import TrainConfig
from ceco_fair.training.methods import MethodConfig, method_class

DEFAULT_VAL_FRACTION = 0.1
"""``data.val_fraction`` of a protocol with a search when it gives none."""
METHOD_KEYS = ("name", "label", "ce_weight")


@dataclass(frozen=True)
class MethodSpec:
    """A method of the protocol: its display label and its training configuration."""

    label: str
    config: MethodConfig


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid; with a search also its phase, trial and drawn values."""

    run_id: str
    method: MethodSpec
    seed: int
    rho: float | None = None
    target: str | None = None
    sensitive: str | list[str] | None = None
    phase: Phase | None = None
    trial: int | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    repeat: int | None = None

    @property
    def condition(self) -> str:
        """The run's condition as the result tables name it (``rho=0.9``, ``Attractive-vs-Male``, ``all``)."""
        return condition_label(self.rho, self.target, self.sensitive)


def run_name(
    label: str, rho: float | None, target: str | None, sensitive: str | list[str] | None, seed: int, trial: int | None
) -> str:
    """A run id: ``<label>[-rho<ρ>][-<target>-vs-<sensitive>][-trial<t>]-seed<s>``."""
    parts = [label]
    if rho is not None:
        parts.append(f"rho{rho:g}")
    if target is not None:
        groups = "+".join(sensitive) if isinstance(sensitive, list) else sensitive
        parts.append(f"{target}-vs-{groups}")
    if trial is not None:
        parts.append(f"trial{trial}")
    parts.append(f"seed{seed}")
    return "-".join(parts)


@dataclass(frozen=True)
class Protocol:
    """A validated protocol."""

    name: str
    dataset: str
    data: Mapping[str, Any]
    rhos: list[float | None]
    attributes: list[tuple[str | None, str | list[str] | None]]
    seeds: list[int]
    encoder: EncoderConfig
    methods: list[MethodSpec]
    train: TrainConfig
    probe: ProbeConfig
    eval: EvalConfig
    device: Literal["auto", "cpu", "cuda"] = "auto"
    report: bool = True
    description: str = ""
    source: Path | None = None
    search: SearchConfig | None = None

    def grid(self) -> list[RunSpec]:
        """Every run: ρ (or attribute pairs) × seeds × methods, methods varying fastest.

        Runs that share a dataset (same ρ, attributes and seed) come one after another, so the
        data is built once for all methods. With a search: the search phase, every repeat ×
        condition × method × trial, repeat ``r`` at ``seeds[r]`` (under ``reseed`` finals the final
        runs follow from the picks: :meth:`final_grid`).
        """
        if self.search is not None:
            return [
                run
                for repeat, seed in enumerate(self.search.repeat_seeds(self.seeds))
                for run in self._trial_runs(PHASE_SEARCH, [seed], repeat)
            ]
        runs: list[RunSpec] = []
        for rho, (target, sensitive), seed, method in itertools.product(
            self.rhos, self.attributes, self.seeds, self.methods
        ):
            runs.append(
                RunSpec(
                    run_name(method.label, rho, target, sensitive, seed, None), method, seed, rho, target, sensitive
                )
            )
        return runs

    def final_grid(self, picks: Mapping[str, Picks]) -> list[RunSpec]:
        """The final phase: under ``reseed``, each trial a rule picked at every seed after the first, each once.

        At ``seeds[0]`` the picked trial's search run is its final run (same configuration, seed and id).
        Under ``repeat`` finals there is no final phase: each repeat's pick is already a result.
        """
        if self.search is None or self.search.finals == FINALS_REPEAT:
            return []
        chosen: dict[tuple[str, str], list[int]] = {}
        for by_method in picks.values():
            for method, by_condition in by_method.items():
                for condition, by_repeat in by_condition.items():
                    trials = chosen.setdefault((method, condition), [])
                    for pick in by_repeat.values():
                        if int(pick["trial"]) not in trials:
                            trials.append(int(pick["trial"]))
        return [
            run
            for run in self._trial_runs(PHASE_FINAL, self.seeds[1:], 0)
            if run.trial in chosen.get((run.method.label, run.condition), [])
        ]

    def _trial_runs(self, phase: Phase, seeds: list[int], repeat: int) -> list[RunSpec]:
        """Condition × seed × method × trial runs of ``repeat`` with their drawn values (filtered by the caller)."""
        assert self.search is not None
        sections = {"train": to_plain(self.train), "probe": to_plain(self.probe)}
        runs: list[RunSpec] = []
        for rho, (target, sensitive), seed, method in itertools.product(
            self.rhos, self.attributes, seeds, self.methods
        ):
            for trial in range(self.search.trials):
                values = trial_values(self.search, method.label, method.config, trial, sections, repeat)
                spec = MethodSpec(method.label, method_with(method.label, method.config, values))
                name = run_name(method.label, rho, target, sensitive, seed, trial)
                runs.append(RunSpec(name, spec, seed, rho, target, sensitive, phase, trial, values, repeat))
        return runs

    def for_run(self, run: RunSpec) -> Protocol:
        """The protocol a run trains with: its drawn ``train.*`` / ``probe.*`` values applied."""
        if not run.values:
            return self
        sections = sections_with({"train": self.train, "probe": self.probe}, run.values)
        return dataclasses.replace(self, train=sections["train"], probe=sections["probe"])

    def resolved(self) -> dict[str, Any]:
        """The protocol with every default filled in, as plain data (saved beside the results)."""
        data = dict(self.data)
        data["dataset"] = self.dataset
        if dataset_class(self.dataset).takes_rho:
            data["rho"] = list(self.rhos)
        elif self.attributes != [(None, None)]:
            data["attributes"] = [{"target": t, "sensitive": s} for t, s in self.attributes]
        methods = [
            {
                "name": m.config.name,
                "label": m.label,
                "ce_weight": m.config.cross_entropy_weight,
                **dict(m.config.options),
            }
            for m in self.methods
        ]
        return {
            "name": self.name,
            "description": self.description,
            "device": self.device,
            "seeds": self.seeds,
            "data": to_plain(data),
            "encoder": to_plain(self.encoder),
            "methods": methods,
            "train": to_plain(self.train),
            "probe": to_plain(self.probe),
            "eval": to_plain(self.eval),
            "report": self.report,
            **({"search": self.search.resolved()} if self.search is not None else {}),
        }


TOP_LEVEL_KEYS = (
    "name",
    "description",
    "device",
    "seeds",
    "data",
    "encoder",
    "methods",
    "train",
    "probe",
    "eval",
    "report",
    "search",
)


def _positive_list(value: Any, path: str, kind: type) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ProtocolError(f"{path}: the list is empty, so the grid has no runs")
    return [coerce(item, kind, f"{path}[{i}]" if isinstance(value, list) else path) for i, item in enumerate(items)]


def _parse_seeds(raw: Any) -> list[int]:
    seeds = _positive_list(raw if raw is not None else [0], "seeds", int)
    for index, seed in enumerate(seeds):
        if seed < 0:
            where = f"seeds[{index}]" if isinstance(raw, list) else "seeds"
            raise ProtocolError(f"{where}: expected a seed >= 0, got {seed}")
    if len(set(seeds)) != len(seeds):
        raise ProtocolError(f"seeds: duplicate seeds in {seeds}")
    return seeds


def _parse_rhos(dataset: str, data: dict[str, Any]) -> list[float | None]:
    if "rho" not in data:
        return [None]
    if not dataset_class(dataset).takes_rho:
        takers = [name for name, factory in DATASETS.items() if factory.takes_rho]
        raise ProtocolError(f"data.rho: only {' and '.join(takers)} take rho, not {dataset}")
    rhos = _positive_list(data.pop("rho"), "data.rho", float)
    for index, rho in enumerate(rhos):
        if not (0 < rho <= 1) or math.isnan(rho):
            raise ProtocolError(f"data.rho[{index}]: expected a value in (0, 1], got {rho}")
    _reject_repeats(rhos, "data.rho", lambda rho: f"{rho:g}")
    return list(rhos)


def _reject_repeats(items: list[Any], path: str, show: Callable[[Any], str]) -> None:
    """Raise :class:`ProtocolError` naming the first item of a grid axis that is listed twice."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        key = show(item)
        if key in seen:
            raise ProtocolError(
                f"{path}[{index}]: {key} repeats {path}[{seen[key]}]; each value is a set of runs, list it once"
            )
        seen[key] = index


def _parse_attributes(dataset: str, data: dict[str, Any]) -> list[tuple[str | None, str | list[str] | None]]:
    if "attributes" not in data:
        return [(data.pop("target", None), data.pop("sensitive", None))]
    if "target" in data or "sensitive" in data:
        raise ProtocolError("data.attributes: give either attributes or target/sensitive, not both")
    raw = data.pop("attributes")
    if not isinstance(raw, list) or not raw:
        raise ProtocolError("data.attributes: expected a non-empty list of {target: ..., sensitive: ...}")
    pairs: list[tuple[str | None, str | list[str] | None]] = []
    for index, item in enumerate(raw):
        path = f"data.attributes[{index}]"
        if not isinstance(item, Mapping):
            raise ProtocolError(f"{path}: expected a mapping with target and sensitive, got {item!r}")
        check_keys(item, ("target", "sensitive"), path)
        if "target" not in item or "sensitive" not in item:
            raise ProtocolError(f"{path}: both target and sensitive are required")
        target = coerce(item["target"], str, f"{path}.target")
        sensitive = coerce(item["sensitive"], str | list[str], f"{path}.sensitive")
        pairs.append((target, sensitive))
    _reject_repeats(pairs, "data.attributes", _show_pair)
    return pairs


def _show_pair(pair: tuple[str | None, str | list[str] | None]) -> str:
    """``target vs sensitive`` (several sensitive attributes joined by ``+``), as run ids name a pair."""
    target, sensitive = pair
    groups = "+".join(sensitive) if isinstance(sensitive, list) else sensitive
    return f"{target} vs {groups}"


def _parse_methods(raw: Any) -> list[MethodSpec]:
    if not isinstance(raw, list) or not raw:
        raise ProtocolError("methods: expected a non-empty list of methods such as [{name: contex}]")
    specs: list[MethodSpec] = []
    for index, item in enumerate(raw):
        path = f"methods[{index}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or "name" not in item:
            raise ProtocolError(f"{path}: expected a mapping with a name, got {item!r}")
        name = item["name"]
        options = method_class(name, path).check_options({k: v for k, v in item.items() if k not in METHOD_KEYS}, path)
        ce_weight = coerce(item["ce_weight"], float, f"{path}.ce_weight") if "ce_weight" in item else None
        if ce_weight is not None and ce_weight < 0:
            raise ProtocolError(f"{path}.ce_weight: expected >= 0, got {ce_weight}")
        label = coerce(item.get("label", spec_attribute(name) if is_user_spec(name) else name), str, f"{path}.label")
        specs.append(MethodSpec(label, MethodConfig(name, options, ce_weight)))
    labels = [s.label for s in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ProtocolError(f"methods: label {duplicates[0]!r} is used twice; give each method a distinct label")
    return specs


def parse_protocol(raw: Any, *, source: Path | None = None, check_data: bool = True) -> Protocol:
    """Validate a protocol mapping (already parsed from YAML) and build a :class:`Protocol`.

    Args:
        raw: the YAML document.
        source: the file it came from (for messages and relative data paths).
        check_data: also check that the data files and folders exist (preflight).

    Raises:
        ProtocolError: any invalid key or value; the message names the key.
        DataError: a data file or folder is missing or incomplete.
    """
    if not isinstance(raw, Mapping):
        raise ProtocolError(f"expected a mapping of protocol keys at the top level, got {type(raw).__name__}")
    check_keys(raw, TOP_LEVEL_KEYS, "")
    for key in ("name", "data", "methods"):
        if key not in raw:
            raise ProtocolError(f"{key}: required key is missing")
    name = coerce(raw["name"], str, "name")
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ProtocolError(f"name: expected a non-empty name usable as a folder name, got {name!r}")
    data_raw = raw["data"]
    if not isinstance(data_raw, Mapping) or "dataset" not in data_raw:
        raise ProtocolError("data.dataset: required key is missing")
    dataset = coerce(data_raw["dataset"], str, "data.dataset")
    if dataset not in DATASETS and FACTORY_SEPARATOR not in dataset:
        raise ProtocolError(f"data.dataset: unknown dataset {dataset!r}{closest(str(dataset), DATASETS)}")
    dataset_class(dataset)
    data = {k: v for k, v in data_raw.items() if k != "dataset"}
    rhos = _parse_rhos(dataset, data)
    attributes = _parse_attributes(dataset, data)
    options = dataset_options(dataset)
    check_keys(data, set(options) - {"seed", "split", "target", "sensitive"}, "data")
    if attributes != [(None, None)] and ("target" not in options or "sensitive" not in options):
        raise ProtocolError(f"data.target: {dataset} has a fixed target; remove target, sensitive and attributes")
    if attributes == [(None, None)] and "target" in options:
        attributes = [(options["target"], options["sensitive"])]  # the dataset's defaults, named in results
    for key, default in options.items():
        if default is REQUIRED and key not in data and not (key in ("target", "sensitive") and attributes[0][0]):
            raise ProtocolError(f"data.{key}: required key is missing for dataset {dataset}")
    types = dataset_option_types(dataset)
    for key, value in data.items():
        data[key] = coerce(value, types.get(key, Any), f"data.{key}")
    if source is not None:
        data = _resolve_paths(data, source.parent)
    if raw.get("search") is not None:
        data = with_validation_split(dataset, data)
    encoder = from_mapping(EncoderConfig, _resolve_weights(raw.get("encoder") or {}, source), "encoder")
    if check_data and encoder.weights is not None:
        check_weights_file(encoder.weights)
    if check_data:
        splits = ("train", "valid", "test") if raw.get("search") is not None else ("train", "test")
        for target, sensitive in attributes:
            extra = {k: v for k, v in (("target", target), ("sensitive", sensitive)) if v is not None}
            preflight(dataset, splits=splits, **data, **extra)
    methods = _parse_methods(raw["methods"])
    train = from_mapping(TrainConfig, raw.get("train") or {}, "train")
    for index, method in enumerate(methods):
        method.config.method_class.check_epochs(method.config.options, train.epochs, f"methods[{index}]")
    evaluation = from_mapping(EvalConfig, raw.get("eval") or {}, "eval")
    labels = [method.label for method in methods]
    if evaluation.baseline is not None and evaluation.baseline not in labels:
        raise ProtocolError(
            f"eval.baseline: {evaluation.baseline!r} is not a method label; expected one of {', '.join(labels)}"
        )
    probe = from_mapping(ProbeConfig, raw.get("probe") or {}, "probe")
    seeds = _parse_seeds(raw.get("seeds"))
    search = None
    if raw.get("search") is not None:
        sections = {"train": to_plain(train), "probe": to_plain(probe)}
        search = _parse_search(raw["search"], dataset, methods, sections, seeds)
    return Protocol(
        name=name,
        description=coerce(raw.get("description", ""), str, "description"),
        device=coerce(raw.get("device", "auto"), Literal["auto", "cpu", "cuda"], "device"),
        dataset=dataset,
        data=data,
        rhos=rhos,
        attributes=attributes,
        seeds=seeds,
        encoder=encoder,
        methods=methods,
        train=train,
        probe=probe,
        eval=evaluation,
        report=coerce(raw.get("report", True), bool, "report"),
        source=source,
        search=search,
    )


def with_validation_split(dataset: str, data: dict[str, Any]) -> dict[str, Any]:
    """The data options of a protocol with a search: the dataset must declare a validation split.

    A dataset that carves it from its training images (``val_fraction``) gets 0.1 unless the
    protocol sets it; 0 means no validation split.

    Raises:
        ProtocolError: the dataset has no validation split, or ``data.val_fraction`` is 0.
    """
    if validation_labels(dataset_class(dataset)) is None:
        raise ProtocolError(
            f"search: dataset {dataset} declares no validation split (a class attribute "
            "validation_labels = 'groups' or 'targets'; see ceco_fair.data.base.FairnessDataset)"
        )
    if "val_fraction" not in dataset_options(dataset):
        return data
    if "val_fraction" not in data:
        return {**data, "val_fraction": DEFAULT_VAL_FRACTION}
    if not data["val_fraction"]:
        raise ProtocolError("search: needs a validation split, but data.val_fraction is 0 (e.g. 0.1)")
    return data


def _parse_search(
    raw: Any, dataset: str, methods: list[MethodSpec], sections: Mapping[str, Any], seeds: list[int]
) -> SearchConfig:
    """Validate the ``search`` section against the methods, the schema, the seeds and the validation labels."""
    configs = [(method.label, method.config) for method in methods]
    search = parse_search(raw, configs, sections, seeds)
    labels = validation_labels(dataset_class(dataset))
    for index, rule in enumerate(search.select):
        if RULES[rule].needs_groups and labels != "groups":
            raise ProtocolError(
                f"search.select[{index}]: {rule} needs sensitive values on the validation split, "
                f"which dataset {dataset} does not give (validation_labels = {labels!r})"
            )
    check_trials(search, configs, sections)
    return search


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative data paths (``root``, ``source.idx_dir``, ``cache_dir``, ...) relative to the protocol file."""
    resolved = dict(data)
    for key in ("root", "split_file"):
        if isinstance(resolved.get(key), str):
            resolved[key] = str(_relative_to(Path(resolved[key]), base))
    cache_dir = resolved.get("cache_dir")
    if isinstance(cache_dir, str) and not Path(cache_dir).expanduser().is_absolute():
        resolved["cache_dir"] = str((base / Path(cache_dir).expanduser()).resolve())  # may not exist yet
    source = resolved.get("source")
    if isinstance(source, Mapping):
        resolved["source"] = {
            k: str(_relative_to(Path(v), base)) if k.endswith(("_dir", "_root")) and isinstance(v, str) else v
            for k, v in source.items()
        }
    return resolved


def _resolve_weights(encoder: Any, source: Path | None) -> Any:
    """``encoder.weights`` relative to the protocol file, like the data paths."""
    if source is None or not isinstance(encoder, Mapping) or not isinstance(encoder.get("weights"), str):
        return encoder
    return {**encoder, "weights": str(_relative_to(Path(encoder["weights"]), source.parent))}


def _relative_to(path: Path, base: Path) -> Path:
    path = path.expanduser()
    if path.is_absolute() or path.exists():
        return path
    return (base / path).resolve() if (base / path).exists() else path


def load_protocol(path: Path, *, check_data: bool = True) -> Protocol:
    """Read and validate a protocol file.

    Raises:
        ProtocolError: unreadable file, invalid YAML, or an invalid key (the message names file and key).
        DataError: a data file or folder is missing or incomplete.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProtocolError(f"{path}: cannot read the protocol ({error.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ProtocolError(f"{path}:{where}: {problem}") from None
    try:
        return parse_protocol(raw, source=path, check_data=check_data)
    except CecoFairError as error:
        raise with_prefix(error, str(path)) from None
