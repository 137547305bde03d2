"""Workshop reporting: what a joined learner's course tells the instructor, and the instructor's Class view.

Learner side (the laptop; training stays there):

- ``learner``: ``join`` / ``leave`` a seat (``cvlab lab --join URL --key KEY``), ``follow()`` (the one call a lesson
  makes: it notes each cell run in the workspace), ``status``;
- ``reporter``: reads the workspace (cell log, quiz records, iterations) into events and sends them;
- ``outbox``: the durable queue of events with sequence numbers the server acknowledges.

Instructor side (the machine running ``cvlab workshop serve``):

- ``board``: the events each seat sent, kept once each (``<workspace>/workshop/class.db``), and the Class table
  (one row per seat; lessons, exercises, quiz skills, best metric, published models, who is idle or stuck) as
  JSON, CSV or text for the portal's Class page and ``cvlab workshop progress``;
- ``lessons``: the course's lessons, exercises and check cells, from the cell tags;
- ``nbgrader``: the curriculum as an nbgrader source course;
- ``hub``: JupyterHub glue (a seat per hub user, ``deploy/jupyterhub/``).

For the curriculum: ``cvlab.classroom.follow()``, called once in a lesson's kernel (``cvlab.curriculum`` is meant to
call it on import, so no lesson changes), notes "lesson reached" and "exercise passed / failed" with no hook in the
lesson cells: a cell is known by its id or its source digest, an exercise's check is the cell after it (or the one
tagged ``check``). It costs microseconds per cell, never raises, and does nothing outside a Jupyter kernel.
"""
from __future__ import annotations

from .learner import follow, join, joined, leave, read_env_file, status

__all__ = ["follow", "join", "joined", "leave", "read_env_file", "status"]
