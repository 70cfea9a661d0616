"""The settings definition: flags and environment parsed by one set of rules, flag over variable
over default, bad values refused in one line, and the README's table generated from it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.config import markdown_table
from cli.flags import COMMAND_SETTINGS, settings_from
from cli.main import parser
from service.settings import Settings, SettingsError, env_name

ROOT = Path(__file__).resolve().parents[2]


def _parse(*argv: str, environ: dict[str, str] | None = None) -> Settings:
    args = parser().parse_args(list(argv))
    given = {name: getattr(args, name, None) for name in Settings.model_fields}
    return Settings.from_env(environ or {}, **given)


@pytest.mark.parametrize(("raw", "value"), [("false", False), ("False", False), ("0", False),
                                            ("no", False), ("off", False), ("true", True),
                                            ("1", True), ("yes", True), ("on", True)])
def test_a_boolean_flag_is_a_boolean(raw: str, value: bool):
    settings = _parse("serve", "--audit-unstored", raw, "--access-log", raw)
    assert settings.audit_unstored is value
    assert settings.access_log is value
    assert settings.audits_unstored is value


def test_a_boolean_variable_is_a_boolean():
    settings = Settings.from_env({"RESPONSED_AUDIT_UNSTORED": "false",
                                  "RESPONSED_ACCESS_LOG": "true"})
    assert settings.audit_unstored is False
    assert settings.access_log is True


def test_flag_over_variable_over_default():
    assert _parse("serve").port == 8040
    assert _parse("serve", environ={"RESPONSED_PORT": "9000"}).port == 9000
    assert _parse("serve", "--port", "9100", environ={"RESPONSED_PORT": "9000"}).port == 9100
    both = _parse("worker", "--database-url", "sqlite:///b.db",
                  environ={"DATABASE_URL": "sqlite:///a.db", "REDIS_URL": "redis://x:1/0"})
    assert both.database_url == "sqlite:///b.db"
    assert both.redis_url == "redis://x:1/0"


def test_an_empty_variable_means_the_default():
    assert Settings.from_env({"RESPONSED_HOST": "", "RESPONSED_PORT": ""}).port == 8040


def test_the_constructor_ignores_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RESPONSED_PORT", "9000")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///elsewhere.db")
    assert Settings().port == 8040
    assert Settings().database_url == ""
    assert Settings.from_env().port == 9000


def test_numbers_and_choices_are_typed():
    settings = _parse("serve", "--lease-s", "2.5", "--purge-batch", "7", "--engine", "openai",
                      "--log-level", "DEBUG")
    assert settings.lease_s == 2.5
    assert settings.purge_batch == 7
    assert settings.engine == "openai"
    assert settings.log_level == "debug"


@pytest.mark.parametrize(("argv", "environ", "named"), [
    (["--port", "abc"], {}, "--port 'abc'"),
    (["--port", "70000"], {}, "--port '70000'"),
    (["--access-log", "maybe"], {}, "--access-log 'maybe'"),
    (["--auth", "off"], {}, "--auth 'off'"),
    (["--engine", "tgi"], {}, "--engine 'tgi'"),
    (["--purge-batch", "0"], {}, "--purge-batch '0'"),
    ([], {"RESPONSED_LEASE_S": "-1"}, "RESPONSED_LEASE_S='-1'"),
    ([], {"RESPONSED_AUDIT_UNSTORED": "perhaps"}, "RESPONSED_AUDIT_UNSTORED='perhaps'"),
])
def test_a_bad_value_is_refused_naming_its_source(argv, environ, named):
    with pytest.raises(SettingsError) as refused:
        _parse("serve", *argv, environ=environ)
    message = str(refused.value)
    assert message.startswith(named), message
    assert "\n" not in message


def test_a_bad_value_exits_with_one_line_and_no_traceback(tmp_path: Path):
    env = {**os.environ, "RESPONSED_DATA_DIR": str(tmp_path)}
    for argv, extra in ((["serve", "--port", "abc"], {}),
                        (["migrate"], {"RESPONSED_LOG_LEVEL": "loud"})):
        done = subprocess.run([sys.executable, "-m", "cli.main", *argv], cwd=ROOT,
                              env={**env, **extra}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("responsed: "), done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr


def test_every_command_takes_its_settings_as_flags():
    for command, names in COMMAND_SETTINGS.items():
        argv = {"keys": ["keys", "list"], "audit": ["audit", "verify"]}.get(command, [command])
        for name in names:
            args = parser().parse_args([*argv, "--" + name.replace("_", "-"), "x"])
            assert getattr(args, name) == "x"
    assert "response_ttl_s" in COMMAND_SETTINGS["purge"]
    assert settings_from(parser().parse_args(["purge", "--purge-batch", "3"])).purge_batch == 3


def test_every_setting_has_help_and_a_unique_variable():
    names = [env_name(name) for name in Settings.model_fields]
    assert len(set(names)) == len(names)
    assert {"DATABASE_URL", "REDIS_URL", "RESPONSED_HOST", "RESPONSED_OWNER"} <= set(names)
    assert all(field.description for field in Settings.model_fields.values())


def test_the_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- settings table:[^\n]*-->\n(.*?)<!-- end of settings table -->",
                      readme, re.S)
    assert found, "README.md has lost its settings-table markers"
    assert found.group(1) == markdown_table(), (
        "README.md's configuration table differs from the settings definition: replace it with "
        "the output of `uv run responsed config --markdown`")
    assert readme.count("| `--owner` |") == 1
