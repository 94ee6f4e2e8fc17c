import pytest
from pydantic import Field

from ticketmon.core.config import ConfigError, Settings, load


class Http(Settings):
    host: str = "127.0.0.1"
    port: int = Field(10190, ge=1, le=65535)


class Sample(Settings):
    database_url: str = "sqlite:///x.db"
    webhook_token: str | None = None
    http: Http = Http()
    tags: list[str] = []


def test_defaults_when_nothing_is_given():
    cfg = load(Sample, environ={})
    assert cfg.database_url == "sqlite:///x.db"
    assert cfg.http.port == 10190


def test_yaml_then_environment_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("database_url: postgresql://a/b\nhttp: {port: 8000, host: 0.0.0.0}\n")
    env = {"TICKETMON_HTTP__PORT": "9000", "TICKETMON_TAGS": '["a", "b"]',
           "TICKETMON_UNRELATED": "ignored", "TICKETMON_CONFIG": str(path)}
    cfg = load(Sample, environ=env)
    assert cfg.database_url == "postgresql://a/b"
    assert cfg.http.port == 9000 and cfg.http.host == "0.0.0.0"
    assert cfg.tags == ["a", "b"]
    assert load(Sample, environ=env, overrides={"http": {"port": 1}}).http.port == 1


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("http: {prot: 8000}\n")
    with pytest.raises(ConfigError, match=r"http\.prot: Extra inputs are not permitted"):
        load(Sample, path, environ={})


def test_bad_value_is_named():
    with pytest.raises(ConfigError, match=r"http\.port: .*integer"):
        load(Sample, environ={"TICKETMON_HTTP__PORT": "eighty"})
    with pytest.raises(ConfigError, match=r"http\.port: .*less than or equal to 65535"):
        load(Sample, environ={"TICKETMON_HTTP__PORT": "70000"})


@pytest.mark.parametrize(
    ("text", "message"),
    [("a: [1, 2", "not valid YAML"), ("- 1\n- 2\n", "top level must be a mapping")],
)
def test_broken_files_are_reported(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(Sample, path, environ={})


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(Sample, tmp_path / "absent.yaml", environ={})


def test_empty_file_means_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("")
    assert load(Sample, path, environ={}).http.port == 10190
