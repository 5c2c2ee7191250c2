"""`kilnworks serve create-token` and `kilnworks serve` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from api.auth import authenticate
from api.cli import main
from api.metadata.store import MetadataStore
from tests.servers import free_port, wait_until


def test_create_token_prints_a_working_token(tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/meta/m.db"
    assert (
        main(
            [
                "create-token",
                "--role",
                "engineer",
                "--enterprise",
                "dalian",
                "--db",
                db,
                "--name",
                "Li Wei",
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    meta = MetadataStore.open(db)
    try:
        p = authenticate(meta, token)
        assert (p.role, p.enterprise, p.name) == ("engineer", "dalian", "Li Wei")
    finally:
        meta.close()


def test_create_token_rejects_bad_combinations(tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/m.db"
    assert main(["create-token", "--role", "manager", "--enterprise", "nowhere", "--db", db]) == 2
    assert "must be one of" in capsys.readouterr().err
    assert main(["create-token", "--role", "town", "--enterprise", "dalian", "--db", db]) == 2
    assert main(["--plant", str(tmp_path / "missing.toml"), "--db", db]) == 2
    assert "file not found" in capsys.readouterr().err


@pytest.mark.integration
def test_serve_runs_the_api_and_dashboard(tmp_path):
    db = f"sqlite:///{tmp_path}/meta.db"
    store = f"sqlite:///{tmp_path}/telemetry.db"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    token = subprocess.run(
        [sys.executable, "-m", "core.cli", "serve", "create-token", "--role", "admin", "--db", db],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    ).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.cli",
            "serve",
            "--store",
            store,
            "--db",
            db,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(base + "/api/v1/health").status_code == 200, 30, "serve")
        plant = httpx.get(base + "/api/v1/plant", headers={"Authorization": f"Bearer {token}"})
        assert plant.status_code == 200 and len(plant.json()["enterprises"]) == 5
        assert httpx.get(base + "/api/v1/plant").status_code == 401
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "plotly.min.js" in page.text
        js = httpx.get(base + "/static/vendor/plotly.min.js")
        assert js.status_code == 200 and len(js.content) > 1_000_000
        assert httpx.get(base + "/static/js/app.js").status_code == 200
        assert httpx.get(base + "/static/../api/app.py").status_code == 404
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
