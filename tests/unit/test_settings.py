"""Config: TOML + FRONTDESK__SECTION__KEY overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.settings import ConfigError, load_settings

EXAMPLE = Path(__file__).parents[2] / "deploy" / "frontdesk.example.toml"


def test_defaults_need_no_file() -> None:
    s = load_settings(None, environ={})
    assert s.database.url.startswith("sqlite://")
    assert s.ami.port == 5038


def test_env_overrides_file(tmp_path: Path) -> None:
    cfg = tmp_path / "f.toml"
    cfg.write_text('[ami]\nhost = "pbx.local"\nport = 5038\n')
    s = load_settings(cfg, environ={"FRONTDESK__AMI__PORT": "6000", "FRONTDESK__AMI__SECRET": "x"})
    assert (s.ami.host, s.ami.port, s.ami.secret) == ("pbx.local", 6000, "x")


@pytest.mark.parametrize(
    ("toml", "env", "names"),
    [
        ('[ami]\nport = "many"\n', {}, "ami.port"),
        ("[ami]\nprot = 1\n", {}, "ami.prot"),
        ("[amii]\n", {}, "[amii]"),
        ("", {"FRONTDESK__HTTP__PORT": "99999"}, "http.port"),
        ("", {"FRONTDESK__LOG__LEVEL": "LOUD"}, "log.level"),
        ("", {"FRONTDESK__LOCALE__DEFAULT_TIMEZONE": "Mars/Olympus"}, "locale.default_timezone"),
        ("", {"FRONTDESK__NOSECTION": "1"}, "FRONTDESK__NOSECTION"),
        ("[ami\n", {}, "f.toml"),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], names: str
) -> None:
    cfg = tmp_path / "f.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=names.replace("[", r"\[").replace(".", r"\.")):
        load_settings(cfg, environ=env)


def test_secrets_are_redacted() -> None:
    s = load_settings(
        None, environ={"FRONTDESK__AMI__SECRET": "s3cr3t", "FRONTDESK__TELEGRAM__TOKEN": "1:abc"}
    )
    text = repr(s.redacted())
    assert "s3cr3t" not in text and "1:abc" not in text


def test_example_config_documents_every_key() -> None:
    """deploy/frontdesk.example.toml loads, and names every key the code knows."""
    s = load_settings(EXAMPLE, environ={})
    text = EXAMPLE.read_text()
    for section, values in s.redacted().items():
        assert f"[{section}]" in text
        for key in values:
            assert f"\n{key} =" in text or f"\n# {key} =" in text, f"{section}.{key} undocumented"


def test_the_password_of_a_postgresql_url_never_reaches_a_log() -> None:
    import logging

    from models.redact import install

    s = load_settings(None, environ={"FRONTDESK__DATABASE__URL": "postgres://fd:pa%40ss@db/fd"})
    assert s.redacted()["database"]["url"] == "postgres://fd:***@db/fd"
    logger = logging.getLogger("test.database.url")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(install(s, logging.getLogger("test.unused")))
    logger.addHandler(handler)
    try:
        logger.error("connect failed: %s (password %s)", s.database.url, "pa@ss")
    finally:
        logger.removeHandler(handler)
    [record] = records
    assert "pa@ss" not in record.getMessage() and "pa%40ss" not in record.getMessage()
