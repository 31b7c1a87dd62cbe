"""Credentials, if configured, never reach logs, the database, reports or error messages."""

import pytest

from kakashi_tui.core.errors import ConfigError
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.trading.config import load_config
from tests.clirun import in_process

SECRET = "KEYID-7f3a9c1e-do-not-leak"


def secret_config(tmp_path, mode=0o600):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[kalshi]\napi_key_id = "{SECRET}"\ntimeout_s = 1.0\nmax_retries = 1\nbackoff_base_s = 0.01\n')
    cfg.chmod(mode)
    return cfg


def test_secret_is_masked_in_the_config_object(tmp_path):
    cfg = load_config(str(secret_config(tmp_path)))
    assert cfg.kalshi.api_key_id.get_secret_value() == SECRET
    assert SECRET not in repr(cfg) and SECRET not in str(cfg.model_dump())


def test_world_readable_credentials_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(str(secret_config(tmp_path, 0o644)))


def test_secret_never_leaks_into_output_db_or_reports(capfd, tmp_path):
    cfg = str(secret_config(tmp_path))
    db = tmp_path / "k.db"
    outputs = []
    with FakeKalshiServer(FakeKalshi.with_markets(6)) as srv:
        srv.state.fail_next("503", "503", "malformed-json")
        run = lambda *a: in_process(capfd, *a, "--config", cfg, "--db", str(db))
        outputs.append(
            run(
                "run", "--headless", "--source", "kalshi", "--api-base", srv.base_url, "--ticks", "3", "--interval", "0"
            )
        )
        outputs.append(run("snapshot", "--source", "kalshi", "--api-base", "http://127.0.0.1:9/x", "--strict"))
        outputs.append(run("report", "--out", str(tmp_path / "rep"), "--no-charts"))
        outputs.append(run("run", "--headless", "--ticks", "0"))  # a usage error
    for p in outputs:
        assert SECRET not in p.stdout and SECRET not in p.stderr
    assert outputs[0].returncode == 0 and outputs[1].returncode == 1 and outputs[3].returncode == 2
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.name != "c.toml":
            assert SECRET.encode() not in f.read_bytes(), f
    assert (db.stat().st_mode & 0o777) == 0o600
