"""deploy/jupyterhub/: the config loads with JupyterHub's own config loader and sets every user's server up (seat
key, workspace, curriculum); seats are handed out once each. Where Node's configurable-http-proxy is installed, a
real JupyterHub spawns a user's server and that server's course joins the workshop."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cvlab import workshop
from cvlab.classroom import hub
from cvlab.classroom.store import ClassStore
from cvlab.service import start_background
from cvlab.workspace import Workspace

pytestmark = pytest.mark.timeout(600)
REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "jupyterhub" / "jupyterhub_config.py"


def _seats_file(tmp_path, n=2) -> tuple[Path, list]:
    ws = Workspace(tmp_path / "instructor")
    seats = workshop.create_seats(ws, n)
    workshop.record_endpoint(ws, "10.0.0.5", 8080)  # as `cvlab workshop serve --host 10.0.0.5` does
    path = tmp_path / "seats.json"
    path.write_text(workshop.handout(ws, fmt="json"))
    ws.close()
    return path, seats


def test_jupyterhub_loads_the_deploy_config(tmp_path, monkeypatch):
    from jupyterhub.app import JupyterHub
    from jupyterhub.spawner import LocalProcessSpawner
    seats_file, seats = _seats_file(tmp_path)
    monkeypatch.setenv("CVLAB_HUB_SEATS", str(seats_file))
    monkeypatch.setenv("CVLAB_HUB_STATE", str(tmp_path / "state"))
    app = JupyterHub()
    app.load_config_file(str(CONFIG))
    spawner = LocalProcessSpawner(config=app.config)  # the traits a hub's spawner gets from this config
    assert spawner.cmd == list(hub.SINGLEUSER) and spawner.default_url == hub.DEFAULT_URL
    monkeypatch.setenv("CVLAB_HUB_PYTHON", "/opt/tljh/user/bin/python")
    tljh = JupyterHub()
    tljh.load_config_file(str(CONFIG))
    assert LocalProcessSpawner(config=tljh.config).cmd[0] == "/opt/tljh/user/bin/python"
    assert spawner.cpu_limit == 2 and spawner.mem_limit == 3 * 1024 ** 3
    assert callable(spawner.pre_spawn_hook)
    listed = json.loads(seats_file.read_text())
    assert [s["seat"] for s in listed] == ["seat-01", "seat-02"]
    assert listed[0]["join"] == f"cvlab lab --join http://10.0.0.5:8080 --key {seats[0].training_key}"


def test_the_zero_to_jupyterhub_values_configure_the_same_spawner():
    """The Helm values' extraConfig, run as the chart runs it (with the hub's `c`), and the chart's own fields."""
    import yaml
    from traitlets.config import Config
    values = yaml.safe_load((CONFIG.parent / "z2jh-values.yaml").read_text())
    c = Config()
    exec(compile(values["hub"]["extraConfig"]["cvlab"], "extraConfig.cvlab", "exec"), {"c": c})
    assert c.Spawner.cmd == list(hub.SINGLEUSER) == values["singleuser"]["cmd"]
    assert callable(c.Spawner.pre_spawn_hook)
    assert values["singleuser"]["defaultUrl"] == hub.DEFAULT_URL
    mounted = {m["name"]: m["mountPath"] for m in values["hub"]["extraVolumeMounts"]}
    assert mounted["cvlab-seats"] == "/etc/cvlab"
    workshop_yaml = list(yaml.safe_load_all((CONFIG.parent / "k8s-workshop.yaml").read_text()))
    assert {d["kind"] for d in workshop_yaml} == {"PersistentVolumeClaim", "Deployment", "Service"}


def test_each_user_keeps_one_seat_and_a_full_room_says_so(tmp_path):
    seats_file, _ = _seats_file(tmp_path, n=2)
    listed = hub.load_seats(seats_file)
    state = tmp_path / "state" / "assignments.json"
    assert hub.assign("ana", listed, state)["seat"] == "seat-01"
    assert hub.assign("bo", listed, state)["seat"] == "seat-02"
    assert hub.assign("ana", listed, state)["seat"] == "seat-01"  # a restarted server keeps its seat
    with pytest.raises(workshop.CvlabError) as full:
        hub.assign("cy", listed, state)
    assert full.value.code == "Conflict" and "create --seats" in full.value.message
    roster = tmp_path / "roster.csv"
    roster.write_text("username,seat\ndee,seat-02\n")
    assert hub.assign("dee", listed, tmp_path / "other.json", hub.read_roster(roster))["seat"] == "seat-02"
    assert hub.assign("ed", listed, tmp_path / "other.json", hub.read_roster(roster))["seat"] == "seat-01"
    # the instructor's workspace folder works as the seat list too (the same machine)
    assert [s["seat"] for s in hub.load_seats(tmp_path / "instructor")] == ["seat-01", "seat-02"]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(workshop.CvlabError):
        hub.load_seats(tmp_path / "bad.json")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # a real hub, proxy and user server: about a minute
@pytest.mark.skipif(shutil.which("configurable-http-proxy") is None,
                    reason="JupyterHub's proxy needs Node.js: apt-get install nodejs npm; "
                           "npm install -g configurable-http-proxy")
def test_a_real_hub_gives_a_user_a_seat_a_workspace_and_the_curriculum(tmp_path):
    inst = Workspace(tmp_path / "instructor")
    seats = workshop.create_seats(inst, 2)
    token = secrets.token_hex(16)
    ports = {k: _free_port() for k in ("hub", "internal", "proxy_api")}
    home = tmp_path / "home"
    with start_background(inst, rate_limits=False) as handle:
        (tmp_path / "seats.json").write_text(workshop.handout(inst, handle.endpoint, "json"))
        overlay = tmp_path / "test_config.py"
        overlay.write_text(f"""
c = get_config()
load_subconfig({str(CONFIG)!r})
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"   # SimpleLocalProcessSpawner: for tests, no system users
c.SimpleLocalProcessSpawner.home_dir_template = {str(home)!r} + "/{{username}}"
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {ports['hub']}
c.JupyterHub.hub_port = {ports['internal']}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports['proxy_api']}"
c.JupyterHub.db_url = "sqlite:///{tmp_path}/hub.sqlite"
c.JupyterHub.cookie_secret_file = {str(tmp_path / 'cookie_secret')!r}
c.JupyterHub.services = [{{"name": "cvlab-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "cvlab-test", "services": ["cvlab-test"],
                            "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"]}}]
c.Spawner.args = ["--ServerApp.allow_root=True"]
""")
        env = dict(os.environ, CVLAB_HUB_SEATS=str(tmp_path / "seats.json"), CVLAB_HUB_STATE=str(tmp_path / "state"),
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                   PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), CVLAB_PROFILE="fast")
        log = open(tmp_path / "hub.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(overlay)], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        api = f"http://127.0.0.1:{ports['hub']}/hub/api"
        auth = {"Authorization": f"token {token}"}
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, (tmp_path / "hub.log").read_text()[-3000:]
                try:
                    if requests.get(api, timeout=5).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "the hub did not start"
                time.sleep(0.5)
            assert requests.post(f"{api}/users/ana", headers=auth, timeout=30).status_code in (201, 409)
            assert requests.post(f"{api}/users/ana/server", headers=auth, timeout=60).status_code in (201, 202)
            deadline = time.monotonic() + 300
            while not (requests.get(f"{api}/users/ana", headers=auth, timeout=30).json()
                       .get("servers", {}).get("", {}).get("ready")):
                assert time.monotonic() < deadline, (tmp_path / "hub.log").read_text()[-3000:]
                time.sleep(1)
            # the curriculum, in the user's own workspace, through the hub's proxy
            files = requests.get(f"http://127.0.0.1:{ports['hub']}/user/ana/api/contents", headers=auth,
                                 timeout=60).json()
            assert "00-welcome.ipynb" in {f["name"] for f in files["content"]}
            workspace = home / "ana" / hub.WORKSPACE_DIR
            assert (workspace / "cvlab.db").exists() and (workspace / "notebooks" / "00-welcome.ipynb").exists()
            # the user's server reports for the seat the hub gave them (the reporter's first contact)
            store = ClassStore(inst)
            deadline = time.monotonic() + 120
            while "seat-01" not in store.contacts():
                assert time.monotonic() < deadline, (workspace / "classroom" / "reporter.log").read_text()
                time.sleep(0.5)
            store.close()
            assignments = json.loads((tmp_path / "state" / "seat-assignments.json").read_text())
            assert assignments == {"ana": "seat-01"}
            assert seats[0].training_key not in (tmp_path / "hub.log").read_text()
            requests.delete(f"{api}/users/ana/server", headers=auth, timeout=60)
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    inst.close()
