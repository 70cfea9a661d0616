"""Command-line flags derived from the settings definition: one `--kebab-name` per setting, its
help text, environment variable and default taken from service/settings.py. A flag's value is
kept as given and validated by the same rules as the environment's (so `--access-log false` is
False, and a bad value is refused with one line naming the flag)."""

from __future__ import annotations

import argparse
from typing import Any, Literal, get_args, get_origin

from service.settings import Settings, env_name, flag_name, setting_fields

# The settings each command takes beyond its own arguments; serve and worker take them all.
STORE = ("data_dir", "database_url", "log_level")
COMMAND_SETTINGS: dict[str, tuple[str, ...]] = {
    "serve": tuple(setting_fields()),
    "worker": tuple(setting_fields()),
    "config": tuple(setting_fields()),
    "migrate": STORE,
    "audit": (*STORE, "audit_key"),
    "keys": (*STORE, "auth_cache_s"),
    "purge": (
        *STORE, "response_ttl_s", "audit_ttl_s", "conversation_ttl_s", "purge_batch", "audit_key"
    ),
}


def shown_default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "(empty)" if value == "" else str(value)


def metavar(annotation: Any) -> str:
    if annotation is bool:
        return "{true,false}"
    if get_origin(annotation) is Literal:
        return "{" + ",".join(map(str, get_args(annotation))) + "}"
    return {int: "INT", float: "NUMBER"}.get(annotation, "TEXT")


def add_setting_flags(parser: argparse.ArgumentParser, command: str) -> None:
    fields = setting_fields()
    group = parser.add_argument_group("settings (flag > environment variable > default)")
    for name in COMMAND_SETTINGS[command]:
        field = fields[name]
        text = f"{field.description} (env {env_name(name)}, default {shown_default(field.default)})"
        group.add_argument(flag_name(name), dest=name, default=None,
                           metavar=metavar(field.annotation),
                           help=text.replace("%", "%%"))


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings with the flags given on top; SettingsError on a bad value."""
    given = {name: getattr(args, name, None) for name in setting_fields()}
    return Settings.from_env(**given)
