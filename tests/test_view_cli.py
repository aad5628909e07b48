"""The ``m1eval view`` verb: export, serving on loopback, one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.cli.view import host_notice
from m1eval.rundir.synthetic import make_synthetic_run

REPO = Path(__file__).resolve().parent.parent


def test_export_writes_every_page(tmp_path):
    make_synthetic_run(tmp_path / "runs", model="a", n_problems=3, n_samples=4, seed=1)
    make_synthetic_run(tmp_path / "runs", model="b", n_problems=3, n_samples=4, seed=2)
    result = CliRunner().invoke(app, ["view", str(tmp_path / "runs"), "--export", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    pages = sorted(str(p.relative_to(tmp_path / "site")) for p in (tmp_path / "site").rglob("*.html"))
    assert "index.html" in pages and sum("/p/" in p for p in pages) == 3 + 3 + 3  # two runs and their comparison
    assert any(p.startswith("compare/") and p.endswith("/index.html") for p in pages)
    assert "wrote 16 pages" in result.output  # 13 pages, view.js, view.css, favicon.svg


def test_errors_are_one_line(tmp_path):
    run = make_synthetic_run(tmp_path / "runs", n_problems=2, n_samples=2)
    missing = CliRunner().invoke(app, ["view", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no such run folder" in missing.output
    inside = CliRunner().invoke(app, ["view", str(run), "--export", str(run / "site")])
    assert inside.exit_code == 2 and "inside run folder" in inside.output and not (run / "site").exists()


def test_a_wider_host_is_said():
    assert host_notice("127.0.0.1") is None and host_notice("localhost") is None and host_notice("::1") is None
    assert "anyone who can reach" in host_notice("0.0.0.0")


@pytest.mark.slow
def test_serves_on_loopback(tmp_path):
    make_synthetic_run(tmp_path / "runs", n_problems=3, n_samples=4)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "m1eval", "view", str(tmp_path / "runs"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline, response = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert response is not None and response.status_code == 200, proc.poll()
        assert "default-src 'none'" in response.headers["content-security-policy"] and "synthetic-s0" in response.text
        assert httpx.get(f"http://127.0.0.1:{port}/../../etc/passwd", timeout=5).status_code == 404
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert f"open http://127.0.0.1:{port}/" in err and "anyone who can reach" not in err
