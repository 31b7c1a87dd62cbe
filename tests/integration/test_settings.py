"""Settings resolution (trading/config.py ``Settings``, pydantic-settings): one order for every
setting, command line > environment > config file > what the database remembers > default, each
value with its origin; every environment name read before still read, by its exact name."""

from __future__ import annotations

import logging

import pytest

from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.frontends.cli import main as cli
from kakashi_tui.trading.config import Setting, load_config
from kakashi_tui.trading.runtime import REMEMBERED, Options, db_path, resolve_sim, settings

SECRET = "KEYID-5e1c-do-not-leak"

#: The seed each place gives (the default is 7).
GIVEN = {"command line": 1, "environment KAKASHI_SEED": 2, "config file": 3, "database": 4}


def seed_setting(tmp_path, monkeypatch, places: set[str]) -> Setting:
    """The seed as resolved when each place in ``places`` gives its own: a real config file, a
    real database remembering a seed, the real environment, the command line's options."""
    monkeypatch.delenv("KAKASHI_SEED", raising=False)
    if "environment KAKASHI_SEED" in places:
        monkeypatch.setenv("KAKASHI_SEED", str(GIVEN["environment KAKASHI_SEED"]))
    toml = tmp_path / "c.toml"
    toml.write_text(f"[sim]\nseed = {GIVEN['config file']}\n" if "config file" in places else "")
    store = Store(tmp_path / f"k{len(places)}.db")
    try:
        if "database" in places:
            store.set_controls({Control.SIM_SEED: GIVEN["database"]})
        remembered = {name: store.control(key) for name, key in REMEMBERED.items()}
    finally:
        store.close()
    opts = Options(seed=GIVEN["command line"] if "command line" in places else None)
    return settings(opts, load_config(str(toml)), remembered).setting("seed")


def test_the_same_setting_from_all_five_places_resolves_in_one_order(tmp_path, monkeypatch):
    """The seed from every place at once, then with the winner taken away each time: the command
    line wins, then the environment, the config file, the database, the default. Any other order
    of the sources gives another value (or origin) at some step."""
    order = list(GIVEN)
    for i in range(len(order) + 1):
        places = set(order[i:])
        got = seed_setting(tmp_path, monkeypatch, places)
        expected = Setting(GIVEN[order[i]], order[i]) if i < len(order) else Setting(7, "default")
        assert got == expected, f"given by {sorted(places)}"


def test_db_path_keeps_its_environment_name_and_order(tmp_path, monkeypatch):
    toml = tmp_path / "c.toml"
    toml.write_text('db = "from-file.db"\n')
    cfg = load_config(str(toml))
    monkeypatch.setenv("KAKASHI_DB", "from-env.db")
    assert settings(Options(db="from-cli.db"), cfg).setting("db") == Setting("from-cli.db", "command line")
    assert settings(Options(), cfg).setting("db") == Setting("from-env.db", "environment KAKASHI_DB")
    monkeypatch.setenv("KAKASHI_DB", "")  # set empty: not given (as before)
    assert db_path(Options(), cfg) == "from-file.db"
    monkeypatch.delenv("KAKASHI_DB")
    monkeypatch.setenv("kakashi_db", "lower.db")  # only the exact name is read (as before)
    assert settings(Options(), load_config(None)).setting("db") == Setting("kakashi.db", "default")


def test_credentials_from_the_environment_win_and_never_show(tmp_path, monkeypatch, caplog):
    toml = tmp_path / "c.toml"
    toml.write_text('[kalshi]\napi_key_id = "file-id"\nprivate_key_file = "file.pem"\n')
    toml.chmod(0o600)
    cfg = load_config(str(toml))
    s = settings(Options(), cfg)
    assert s.origin("kalshi_key_id") == "config file" and s.kalshi_key_file == "file.pem"
    monkeypatch.setenv("KAKASHI_KALSHI_KEY_ID", SECRET)
    monkeypatch.setenv("KAKASHI_KALSHI_KEY_FILE", "env.pem")
    # pydantic-settings logs every source's values at DEBUG when asked to: the key id is masked there too
    monkeypatch.setenv("PYDANTIC_SETTINGS_DEBUG", "1")
    with caplog.at_level(logging.DEBUG, logger="pydantic_settings"):
        s = settings(Options(), cfg)
    assert s.kalshi_key_id is not None and s.kalshi_key_id.get_secret_value() == SECRET
    assert s.origin("kalshi_key_id") == "environment KAKASHI_KALSHI_KEY_ID"
    assert s.setting("kalshi_key_file") == Setting("env.pem", "environment KAKASHI_KALSHI_KEY_FILE")
    assert "kalshi_key_id" in caplog.text  # (the debug line was written)
    assert SECRET not in caplog.text and SECRET not in repr(s) and SECRET not in str(s.model_dump())


def test_a_seed_from_the_environment_meets_the_database_it_opens(tmp_path, monkeypatch):
    db = tmp_path / "k.db"
    store = Store(db)
    store.set_controls({Control.SIM_SEED: 3})
    monkeypatch.setenv("KAKASHI_SEED", "5")
    with pytest.raises(ConfigError, match=r"created with --seed 3 \(environment KAKASHI_SEED asks 5\)"):
        resolve_sim(store, Options(), load_config(None))
    monkeypatch.setenv("KAKASHI_SEED", "3")
    assert resolve_sim(store, Options(), load_config(None)).seed == Setting(3, "environment KAKASHI_SEED")
    store.close()


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("abc", "environment KAKASHI_SEED: Input should be a valid integer"),
        ("-1", "environment KAKASHI_SEED: Input should be greater than or equal to 0"),
        (str(2**63), "environment KAKASHI_SEED: Input should be less than or equal to 9223372036854775807"),
    ],
)
def test_a_bad_seed_in_the_environment_is_refused_in_one_line(tmp_path, capsys, monkeypatch, value, fragment):
    monkeypatch.setenv("KAKASHI_SEED", value)
    code = cli.main(["snapshot", "--db", str(tmp_path / "k.db")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err
    assert value not in lines[0]  # the variable's text is not echoed
    assert not (tmp_path / "k.db").exists()  # refused before anything was opened
