"""``cvlab lab``: the learner's working copies of the lessons in the workspace, and JupyterLab opened on
00-welcome (as root too); the core is ``cvlab.course``. ``--join`` (workshop mode, issue 21) joins a workshop
first and runs a progress reporter beside JupyterLab."""
from __future__ import annotations

from cvlab.classroom.learner import with_join
from cvlab.course import configure, run

configure, run = with_join(configure, run)
