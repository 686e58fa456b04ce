"""One settings mechanism: every variable listed once (spanchain.config.env) with its default and
meaning, documented in docs/configuration.md, never spelled out elsewhere in product code, and
resolved everywhere in one order with one set of true/false spellings."""

import ast
import logging
import re
from pathlib import Path

import pytest

from spanchain.config import env
from spanchain.config import resolve as R

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = ROOT / "src" / "spanchain" / "config" / "env.py"
VARIABLES = sorted(n for n in dir(env) if n.isupper())


def test_every_variable_has_its_name_as_value_and_a_default_in_its_docstring():
    tree = ast.parse(ENV_FILE.read_text())
    docs = {}
    body = tree.body
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.Assign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.targets[0].id] = after.value.value
    assert len(VARIABLES) >= 50
    for name in VARIABLES:
        assert getattr(env, name) == name
        assert docs.get(name, "").startswith("Default: "), name


def test_every_variable_is_documented_in_configuration_md():
    documented = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in VARIABLES if f"`{name}`" not in documented and name not in documented]
    assert not missing, f"undocumented in docs/configuration.md: {missing}"


def test_no_product_module_spells_a_variable_name_itself():
    sources = [*(ROOT / "src" / "spanchain").rglob("*.py"), *(ROOT / "exporters").glob("*/src/**/*.py")]
    offenders = []
    for path in sources:
        if path == ENV_FILE:
            continue
        for name in re.findall(r'(?<![\w])"((?:OTEL|SPANCHAIN)_[A-Z0-9_]+)"', path.read_text()):
            offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, "use spanchain.config.env instead of: " + ", ".join(offenders)


def test_argument_then_environment_then_default(caplog):
    r = R.Resolver({"X_VAR": "7"}, owner="t")
    assert r.get(3, "x", "X_VAR", R.integer, 1) == 3
    assert r.get(None, "x", "X_VAR", R.integer, 1) == 7
    assert r.get(None, "x", "OTHER", R.integer, 1) == 1
    with pytest.raises(ValueError, match="x='many'"):  # a bad argument names itself and raises
        r.get("many", "x", "X_VAR", R.integer, 1)
    with caplog.at_level(logging.ERROR):
        assert R.Resolver({"X_VAR": "many"}, owner="t").get(None, "x", "X_VAR", R.integer, 1) == 1
    assert "X_VAR='many'" in caplog.text and "using 1" in caplog.text
    assert R.Resolver({"T_MS": "2500"}).get(None, "t", "T_MS", R.positive_seconds, 1.0, R.millis_to_seconds) == 2.5


@pytest.mark.parametrize("spelling", ["1", "true", "TRUE", "yes", "on", "0", "false", "No", "off"])
def test_every_flag_accepts_the_same_spellings(monkeypatch, spelling):
    from spanchain.config.configure import env_flag
    from spanchain.content import redaction
    from spanchain_aim.config import resolve_config

    expected = R.parse_bool(spelling)
    monkeypatch.setenv("SPANCHAIN_INSTRUMENT", spelling)
    assert env_flag("SPANCHAIN_INSTRUMENT") is expected
    assert redaction.enabled_from_env({"SPANCHAIN_REDACT_SECRETS": spelling}) is expected
    assert resolve_config(env={"OTEL_EXPORTER_AIM_LOG_SYSTEM_PARAMS": spelling}).log_system_params is expected
    with pytest.raises(ValueError):
        R.parse_bool("maybe")
