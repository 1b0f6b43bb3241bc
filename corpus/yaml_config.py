"""YAML configs validated by pydantic, with errors that name the file and the bad key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and key."""


def parse_model(model: type[Model], raw: Any, source: str = "<config>") -> Model:
    """Validate an already-parsed mapping; `source` names it in error messages."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(top level)"
            lines.append(f"{source}: {key}: {error['msg']}")
        raise ConfigError("\n".join(lines)) from None


def load_model(model: type[Model], path: str | os.PathLike[str]) -> Model:
    """Read a YAML file and validate it as `model`."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_model(model, raw, str(path))
