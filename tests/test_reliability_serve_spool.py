"""`spanchain serve` spools by default: the exporters it builds get a durable spool directory."""

import argparse

from spanchain.serve import app


def _isolate(monkeypatch):
    # apply_spool_default writes SPANCHAIN_SPOOL_DIR into os.environ; setenv (unlike delenv of
    # an absent variable) makes monkeypatch remove it again after the test.
    for name in ("SPANCHAIN_SPOOL_DIR", "SPANCHAIN_SERVE_SPOOL_DIR"):
        monkeypatch.setenv(name, "")


def _args(**kw):
    parser = argparse.ArgumentParser()
    app.add_arguments(parser)
    return parser.parse_args([f"--{k.replace('_', '-')}={v}" for k, v in kw.items()])


def test_serve_spools_by_default_under_the_state_directory(monkeypatch, tmp_path):
    _isolate(monkeypatch)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert app.apply_spool_default(_args()) == str(tmp_path / "spanchain" / "serve-spool")
    assert app.os.environ["SPANCHAIN_SPOOL_DIR"] == str(tmp_path / "spanchain" / "serve-spool")


def test_serve_spool_argument_beats_environment_and_off_turns_it_off(monkeypatch, tmp_path):
    _isolate(monkeypatch)
    monkeypatch.setenv("SPANCHAIN_SERVE_SPOOL_DIR", str(tmp_path / "env"))
    assert app.apply_spool_default(_args(spool_dir=tmp_path / "arg")) == str(tmp_path / "arg")
    assert app.apply_spool_default(_args()) == str(tmp_path / "env")
    monkeypatch.setenv("SPANCHAIN_SERVE_SPOOL_DIR", "off")
    assert app.apply_spool_default(_args()) is None
    assert "SPANCHAIN_SPOOL_DIR" not in app.os.environ


def test_the_exporters_serve_builds_use_the_spool(monkeypatch, tmp_path):
    _isolate(monkeypatch)
    monkeypatch.delenv("OTEL_EXPORTER_AIM_SPOOL_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setenv("OTEL_EXPORTER_AIM_REPO", str(tmp_path / "aim"))
    spool = app.apply_spool_default(_args())
    (exporter,) = app.build_named_exporters(["aim"]).values()
    try:
        assert exporter.engine.settings.spool_dir == spool
    finally:
        exporter.shutdown()
