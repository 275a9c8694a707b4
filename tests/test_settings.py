"""One settings object: defaults, then a TOML file, then ARTBOOTH_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.settings import Settings, SettingsError


def test_environment_overrides_the_config_file_which_overrides_defaults(tmp_path):
    config = tmp_path / "artbooth.toml"
    config.write_text('port = 9000\nhost = "0.0.0.0"\ndata_dir = "/srv/artbooth"\nallow_model_download = true\n')
    settings = Settings.load(environ={"ARTBOOTH_CONFIG": str(config), "ARTBOOTH_PORT": "9100"})
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"
    assert settings.data_dir == Path("/srv/artbooth")
    assert settings.allow_model_download is True
    assert settings.segmenter == "modnet"
    assert settings.resolved_artworks_dir == Path("/srv/artbooth/artworks")


def test_public_url_defaults_to_host_and_port_and_can_be_set():
    assert Settings.load(environ={"ARTBOOTH_PORT": "8181"}).resolved_public_url == "http://localhost:8181"
    settings = Settings.load(environ={"ARTBOOTH_PUBLIC_URL": "http://192.168.1.20:8080/"})
    assert settings.resolved_public_url == "http://192.168.1.20:8080"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ARTBOOTH_PORT": "eighty"}, "ARTBOOTH_PORT"),
        ({"ARTBOOTH_PORT": "70000"}, "port must be 1-65535"),
        ({"ARTBOOTH_ALLOW_MODEL_DOWNLOAD": "perhaps"}, "expected true/false"),
        ({"ARTBOOTH_SEGMENTER": "magic"}, "segmenter must be one of modnet"),
        ({"ARTBOOTH_CONFIG": "/nonexistent/artbooth.toml"}, "config file not found"),
        ({"ARTBOOTH_LOGIN_MAX_FAILURES": "0"}, "login_max_failures must be at least 1"),
        ({"ARTBOOTH_STAFF_SESSION_HOURS": "0"}, "staff_session_hours must be at least 1"),
        ({"ARTBOOTH_PASSWORD_HASH_MEMORY_MIB": "4"}, "password_hash_memory_mib must be at least 8"),
    ],
)
def test_bad_values_get_clear_errors(environ, message):
    with pytest.raises(SettingsError, match=message):
        Settings.load(environ=environ)


def test_config_file_with_unknown_keys_or_bad_toml_is_refused(tmp_path):
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("prot = 8080\n")
    with pytest.raises(SettingsError, match="unknown settings: prot"):
        Settings.load(environ={}, config_file=unknown)
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        Settings.load(environ={}, config_file=broken)
