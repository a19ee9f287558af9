"""Loading the alert rules YAML: a typo gets the file, the line and the reason, not a traceback.

The file is parsed twice: once into plain data for pydantic to validate, once into PyYAML's node
tree, which keeps the line of every key, so that a validation error can point at its line.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelcycle.alerting.config import AlertingConfig
from modelcycle.errors import InvalidInputError

DEFAULT_RULES = "default_rules.yaml"


class RulesFileError(InvalidInputError):
    """The rules file cannot be used as it is."""


def default_rules_text() -> str:
    return (files("modelcycle.alerting") / DEFAULT_RULES).read_text(encoding="utf-8")


def _line_of(root: yaml.Node | None, location: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the node at a pydantic error location (tags of unions skipped)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                continue  # a union's tag or a missing field: stay on the parent
            key = next(k for k, v in node.value if v is match)
            node, line = match, key.start_mark.line + 1
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


_TYPE_TAGS = frozenset(
    {"webhook", "slack", "email", "model_stale", "accuracy", "training_failed"}
    | {"training_sla_missed", "drift", "device_anomaly"}
)


def _reason(error: dict[str, Any]) -> str:
    parts = list(error["loc"])
    # pydantic puts a union member's tag in the location (rules.a.accuracy.threshold): drop it
    shown = [p for i, p in enumerate(parts) if not (i == 2 and p in _TYPE_TAGS)]
    location = ".".join(str(p) for p in shown)
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "union_tag_invalid":
        message = (
            f"unknown type {error['input'].get('type')!r}"
            if isinstance(error["input"], dict)
            else message
        )
        expected = error.get("ctx", {}).get("expected_tags")
        if expected:
            message += f" (expected one of {expected})"
    return f"{location}: {message}" if location else message


def _check_channels(config: AlertingConfig, root: yaml.Node | None, source: str) -> None:
    for rule_name, rule in config.rules.items():
        for index, channel in enumerate(rule.channels):
            if channel not in config.channels:
                line = _line_of(root, ("rules", rule_name, "channels", index))
                known = ", ".join(sorted(config.channels)) or "none defined"
                raise RulesFileError(
                    f"{source}:{line}: rules.{rule_name}.channels: no channel named "
                    f"{channel!r} (channels: {known})"
                )


def parse_rules(text: str, source: str) -> AlertingConfig:
    """Validate rules text; `source` names it in errors (a path, or 'default rules')."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RulesFileError(f"{where}: not valid YAML: {problem}") from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesFileError(f"{source}:1: the rules file must be a mapping (channels:, rules:)")
    try:
        config = AlertingConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = tuple(first["loc"])
        if first["type"] == "union_tag_invalid":
            location += ("type",)  # point at the wrong `type:` line, not the rule's name
        line = _line_of(root, location)
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise RulesFileError(f"{source}:{line}: {_reason(dict(first))}{more}") from error
    _check_channels(config, root, source)
    return config


def load_rules(path: Path | None) -> AlertingConfig:
    """The rules at `path`, or the shipped defaults when no path is configured."""
    if path is None:
        return parse_rules(default_rules_text(), "default rules")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise RulesFileError(f"alert rules file {path} does not exist") from error
    except (OSError, UnicodeDecodeError) as error:
        raise RulesFileError(f"alert rules file {path} cannot be read: {error}") from error
    return parse_rules(text, str(path))
