"""`responsed config`: the settings this command line would run with, or (`--markdown`) the
table of every setting that the README's Configuration section embeds."""

from __future__ import annotations

import argparse

from cli.flags import shown_default
from service.settings import Settings, env_name, flag_name, setting_fields

SECRETS = ("engine_api_key", "encryption_key")


def markdown_table() -> str:
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for name, field in setting_fields().items():
        default = shown_default(field.default)
        default = default if default == "(empty)" else f"`{default}`"
        rows.append(f"| `{flag_name(name)}` | `{env_name(name)}` | {default} | "
                    f"{field.description} |")
    return "\n".join(rows) + "\n"


def effective(settings: Settings) -> str:
    lines = []
    for name, value in settings.model_dump().items():
        shown = "(set)" if name in SECRETS and value else (
            shown_default(value) if isinstance(value, bool) else str(value))
        lines.append(f"{env_name(name)}={shown}")
    return "\n".join(lines) + "\n"


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    config = commands.add_parser(
        "config", help="print the settings in effect (secrets masked), or --markdown: the table "
        "of every setting")
    config.add_argument("--markdown", action="store_true",
                        help="the Markdown table of every flag, variable and default")
    return config
