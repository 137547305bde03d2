"""The soak benchmark's CI version: 30 s of normal traffic from 13 clients, then 30 s with 3 hostile clients
mixed in (issue 22's attacks), against `cvlab serve`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_soak_30_seconds_16_clients(trained_colours):
    path, _ = trained_colours()  # the soak reuses its trained project instead of training one
    # a hang (a training or export not done in 120 s, a client stuck) ends the soak with the server's stacks
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "soak.py"), "--seconds", "30", "--clients", "16",
                           "--hostile", "3", "--quiet-seconds", "30",
                           "--job-timeout", "120", "--workspace", str(path)], capture_output=True, text=True,
                          timeout=880)
    assert proc.stdout.strip(), proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert "server_stacks" not in result, result["failures"][:5] + [result["server_stacks"]]
    assert result["requests"] > 100 and result["seconds"] >= 30
    routes = result["routes"]
    for route in ("POST images", "POST images/files", "GET images", "POST classify/nostore", "POST classify",
                  "POST train", "POST export", "GET export zip"):
        assert route in routes and routes[route]["p95_ms"] > 0, route
    assert result["integrity"]["ok"], result["integrity"]
    assert result["integrity"]["counts"]["images"] > 10  # uploads landed beyond the setup images
    for route in ("hostile amplified body", "hostile slow url", "hostile bad unicode"):  # issue 22's attacks ran
        assert route in routes, route
    assert result["quiet_growth"]["rss_mb"] <= 0.10, result  # no leak
    # descriptors: bounded by the connection pool's reach (soak.py's FD_ALLOWANCE, the same rule as its verdict)
    growth = result["open_fds_growth"]
    assert growth["count"] <= growth["allowed"], result
    print("RSS growth over both windows (MB):", result["rss_growth_mb"], "p95 ratio:", result["normal_p95"]["ratio"])
    assert result["server_errors_5xx"] == 0, result["server_error_samples"]
    assert result["failed"] == 0, (result["failures"], proc.stderr[-3000:])
    assert result["passed"] and proc.returncode == 0, result
