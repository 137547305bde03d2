# JupyterHub configuration for a cvlab workshop (README.md in this folder: The Littlest JupyterHub, Kubernetes).
#
# Every hub user's server gets a workshop seat (its key in CVLAB_WORKSHOP_KEY, the workshop's address in
# CVLAB_WORKSHOP_URL), its own workspace (~/cvlab-workspace) and the curriculum (the learner's copies of the
# lessons), and opens on lesson 00. Their course then reports lessons, exercise checks, quiz answers and
# iterations to the instructor's Class page, exactly like a laptop joined with `cvlab lab --join`.
#
# Three values to set (here, or in the hub's environment):
#   CVLAB_HUB_SEATS        the seat list: `cvlab workshop handout --format json --out seats.json` on the
#                          instructor's machine, or the instructor's workspace folder itself (same machine)
#   CVLAB_HUB_WORKSHOP_URL the address user servers reach `cvlab workshop serve` at (default: the handout's)
#   CVLAB_HUB_STATE        a folder the hub keeps which user has which seat in (first come, first served)
# and optionally CVLAB_HUB_ROSTER, a CSV of `username,seat` for fixed seats, and CVLAB_HUB_PYTHON, the user
# servers' Python with cvlab installed (default `python` on their PATH; TLJH: /opt/tljh/user/bin/python).
import os

from cvlab.classroom import hub

c = get_config()  # noqa: F821 - JupyterHub's config loader defines it

STATE = os.environ.get("CVLAB_HUB_STATE", "/srv/cvlab")
hub.configure(
    c,
    seats=os.environ.get("CVLAB_HUB_SEATS", os.path.join(STATE, "seats.json")),
    assignments=os.path.join(STATE, "seat-assignments.json"),
    workshop_url=os.environ.get("CVLAB_HUB_WORKSHOP_URL") or None,
    roster=os.environ.get("CVLAB_HUB_ROSTER") or None,
    python=os.environ.get("CVLAB_HUB_PYTHON", "python"),
)

# A lesson trains small models on the CPU: give each server two cores' worth and enough memory for PyTorch
# (honoured by spawners that enforce limits: SystemdSpawner on TLJH, KubeSpawner on Kubernetes).
c.Spawner.cpu_limit = 2
c.Spawner.mem_limit = "3G"
c.Spawner.http_timeout = 120   # the first start seeds the workspace and copies the lessons
c.Spawner.start_timeout = 300
