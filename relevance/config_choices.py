"""Say which options a config group has when the command line names one it lacks.

Hydra answers `augment=[original,bogus]` with its config search path. Entry points call
`exit_on_unknown_choices` before Hydra composes: every `group=option` override (a choice,
a list for multi-select groups like `augment`, or a sweep of either; Hydra's own `hydra/...`
groups are left to Hydra, since plugins add their options) is checked against
the YAML files of that group in `conf/` and in any `hydra.searchpath=[file://...]` folder,
and an unknown option stops the command with the options that exist.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def _search_dirs(overrides: list[Override], conf_dir: Path) -> list[Path]:
    dirs = [conf_dir]
    for override in overrides:
        if override.key_or_group == "hydra.searchpath" and not override.is_sweep_override():
            value = override.value()
            for entry in value if isinstance(value, list) else [value]:
                if isinstance(entry, str) and entry.startswith("file://"):
                    dirs.append(Path(entry[len("file://"):]))
    return dirs


def _chosen_options(override: Override) -> Iterable[str]:
    values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
    for value in values:
        if isinstance(value, str) and value.startswith("["):  # a swept list arrives as its text
            value = OverridesParser.create().parse_override(f"x={value}").value()
        for option in value if isinstance(value, list) else [value]:
            if isinstance(option, str) and option not in ("null", ""):
                yield option


def unknown_choices(args: list[str], conf_dir: Path = CONF_DIR) -> list[str]:
    """One message per `group=option` whose option has no YAML in that group."""
    candidates = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except Exception:  # a syntax error: Hydra's own message says more
        return []
    dirs = _search_dirs(overrides, conf_dir)
    problems = []
    for override in overrides:
        group = override.key_or_group.lstrip("+~")
        if group.startswith("hydra/"):  # launchers, sweepers: plugins bring options from their packages
            continue
        group_dirs = [d / group for d in dirs if (d / group).is_dir()]
        if not group_dirs or override.is_delete() or "glob" in str(override.value_type).lower():
            continue
        known = sorted({f.stem for d in group_dirs for f in d.glob("*.yaml")})
        for option in _chosen_options(override):
            if option not in known:
                problems.append(f"{override.input_line}: {group} has no option {option!r}; "
                                f"known: {', '.join(known)}")
    return problems


def exit_on_unknown_choices(args: list[str] | None = None, conf_dir: Path = CONF_DIR) -> None:
    problems = unknown_choices(sys.argv[1:] if args is None else args, conf_dir)
    if problems:
        raise SystemExit("error: " + "\n       ".join(problems))
