"""``cvlab lab``: the learner's working copies of the lessons in the workspace, and JupyterLab opened on
00-welcome (as root too); the core is ``cvlab.course``."""
from __future__ import annotations

from cvlab.course import configure, run  # noqa: F401
