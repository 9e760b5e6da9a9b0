"""deploy/systemd: the unit restarts a failed gateway, takes its secrets from an
EnvironmentFile, and runs a subcommand the CLI has; the example env file names real keys."""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from dataclasses import fields
from pathlib import Path

import main
from models.settings import ENV_PREFIX, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string((DEPLOY / "frontdesk.service").read_text("utf-8"))
    return unit


def test_the_service_restarts_on_failure_with_secrets_from_an_environment_file() -> None:
    service = _unit()["Service"]
    assert service["Restart"] == "on-failure"
    assert float(service["RestartSec"]) > 0
    assert service["EnvironmentFile"] == "/etc/frontdesk/frontdesk.env"
    assert service["User"] not in {"", "root"}
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert "/var/lib/frontdesk" in service["ReadWritePaths"].split()
    assert service["WorkingDirectory"] == "/var/lib/frontdesk"


def test_exec_start_runs_the_installed_cli_s_run_subcommand() -> None:
    program, *argv = shlex.split(_unit()["Service"]["ExecStart"])
    assert program.startswith("/")  # systemd wants an absolute path
    scripts = tomllib.loads((DEPLOY.parents[1] / "pyproject.toml").read_text("utf-8"))
    assert scripts["project"]["scripts"][Path(program).name] == "main:main"
    args = main.parser().parse_args(argv)  # exits (fails) on an unknown subcommand
    assert args.command == "run" and args.config == "/etc/frontdesk/frontdesk.toml"
    assert args.command in main.COMMANDS


def test_the_example_env_file_names_existing_settings() -> None:
    text = (DEPLOY / "frontdesk.env.example").read_text("utf-8")
    names = re.findall(rf"^#?({ENV_PREFIX}\w+)=", text, re.MULTILINE)
    assert f"{ENV_PREFIX}AMI__SECRET" in names and f"{ENV_PREFIX}TELEGRAM__TOKEN" in names
    sections = {s.name: getattr(Settings(), s.name) for s in fields(Settings)}
    known = {
        f"{ENV_PREFIX}{name}__{key.name}".upper()
        for name, values in sections.items()
        for key in fields(values)
    }
    assert set(names) <= known, set(names) - known
