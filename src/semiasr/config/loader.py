"""Loading typed configs from YAML and ``key=value`` overrides, with errors a person can act on.

A config is the structured default (:class:`~semiasr.config.schema.ExperimentConfig`), merged with a YAML
file (a name of a shipped config in ``semiasr/conf/`` or a path), merged with command-line overrides. Every
key is checked against the schema before anything merges, so a typo fails at once with the full dotted key
and the closest valid key; a value of the wrong type fails naming the key and the expected type.
"""

from __future__ import annotations

import difflib
from dataclasses import fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from semiasr.config.schema import ExperimentConfig
from semiasr.errors import ConfigError

__all__ = [
    "as_object",
    "available_configs",
    "config_path",
    "load_config",
    "to_yaml",
]


def available_configs() -> list[str]:
    """Names of the configs shipped with semiasr (``semiasr config show NAME``)."""
    root = resources.files("semiasr") / "conf"
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def config_path(name_or_path: str | Path) -> Path:
    """Resolve a shipped config name (``demo``) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} or p.exists():
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        return p
    shipped = resources.files("semiasr") / "conf" / f"{name_or_path}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    names = available_configs()
    close = difflib.get_close_matches(str(name_or_path), names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"no config named '{name_or_path}' (shipped: {', '.join(names)}){hint}",
        suggestion=close[0] if close else None,
    )


def _field_types(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _check_keys(cls: type, data: Any, prefix: str, source: str) -> None:
    """Walk ``data`` (a nested dict) against dataclass ``cls``; raise on the first unknown key."""
    if not isinstance(data, dict):
        return
    types = _field_types(cls)
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in types:
            close = difflib.get_close_matches(str(key), list(types), n=1, cutoff=0.5)
            where = f"'{prefix[:-1]}'" if prefix else "the top level"
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            valid = ", ".join(sorted(types))
            raise ConfigError(
                f"{source}: unknown config key '{full}' ('{key}' is not a key of {where}; "
                f"valid keys there: {valid}){hint}",
                key=full,
                suggestion=f"{prefix}{close[0]}" if close else None,
            )
        sub = types[key]
        if is_dataclass(sub):
            if value is not None and not isinstance(value, dict):
                raise ConfigError(
                    f"{source}: '{full}' is a section ({sub.__name__}), not a value; "
                    f"set its keys as {full}.KEY=VALUE",
                    key=full,
                )
            _check_keys(sub, value, f"{full}.", source)


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def _expected_type(key: str) -> str:
    cls: Any = ExperimentConfig
    for part in key.split("."):
        if not is_dataclass(cls):
            return _type_name(cls)
        t = _field_types(cls).get(part)
        if t is None:
            return "?"
        cls = t
    return _type_name(cls)


def _merge(base: DictConfig, other: Any, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, other)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        value = getattr(e, "value", None)
        raise ConfigError(
            f"{source}: '{key}' must be of type {_expected_type(key)}, got {value!r}",
            key=key,
        ) from None


def _split_override(item: str) -> tuple[str, Any]:
    """``"a.b=[1, 2]"`` → ``("a.b", [1, 2])``: the dotted key and the YAML-parsed value."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{item}' has an empty key")
    try:
        return key, (yaml.safe_load(raw) if raw != "" else "")
    except yaml.YAMLError:
        return key, raw


def _parse_overrides(overrides: list[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for item in overrides:
        key, value = _split_override(item)
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' sets a key below a value", key=key)
        node[parts[-1]] = value
    return tree


def load_config(
    name_or_path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentConfig:
    """Build the typed config: schema defaults ← YAML file ← ``key=value`` overrides.

    Returns an ``ExperimentConfig`` (an OmegaConf structured config: attribute access, type-checked on
    assignment). Raises :class:`~semiasr.errors.ConfigError` on any unknown key or wrong type.
    """
    cfg = OmegaConf.structured(ExperimentConfig)
    if name_or_path is not None:
        path = config_path(name_or_path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
        _check_keys(ExperimentConfig, data, "", str(path))
        cfg = _merge(cfg, data, str(path))
    tree = _parse_overrides(list(overrides))
    _check_keys(ExperimentConfig, tree, "", "override")
    cfg = _merge(cfg, tree, "override")
    OmegaConf.set_readonly(cfg, False)
    # an override of a free-form mapping (e.g. optim.lr_scales={...}) replaces it: a merge could
    # only ever add keys, so inherited entries could not be dropped
    for key, value in map(_split_override, overrides):
        node = OmegaConf.select(cfg, key)
        if isinstance(node, DictConfig) and OmegaConf.get_type(node) is dict:
            if isinstance(value, dict):
                OmegaConf.update(cfg, key, value, merge=False)
    return cfg  # type: ignore[return-value]


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML text (what a run directory's ``config.yaml`` holds)."""
    if is_dataclass(cfg):
        cfg = OmegaConf.structured(cfg)
    return OmegaConf.to_yaml(cfg, resolve=True)


def as_object(cfg: Any) -> ExperimentConfig:
    """Plain dataclass instances (what the components take) from a loaded config; idempotent."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    return cfg
