"""The reliability tests' own helpers (the shared ones live in helpers.py): what a workspace stores that is not
valid Unicode, and a served copy of the trained colours workspace with its iteration published."""
from __future__ import annotations

from contextlib import contextmanager

from helpers import Api


def stored_text_problems(ws) -> list[str]:
    """Every stored text that is not valid Unicode: TEXT columns that do not decode as UTF-8 and, inside the JSON
    ones (metadata, settings...), strings holding a lone surrogate. Empty when the workspace is clean."""
    import json as _json
    import sqlite3

    from cvlab import rules
    problems = []
    conn = sqlite3.connect(str(ws.path / "cvlab.db"))
    conn.text_factory = bytes
    try:
        tables = [r[0].decode() for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if not isinstance(value, bytes):
                        continue
                    try:
                        text = value.decode("utf-8")
                    except UnicodeDecodeError:
                        problems.append(f"{table}: not UTF-8: {value[:60]!r}")
                        continue
                    if text[:1] in "[{":
                        try:
                            stack = [_json.loads(text)]
                        except ValueError:
                            continue
                        while stack:
                            v = stack.pop()
                            if isinstance(v, dict):
                                stack.extend(v.keys())
                                stack.extend(v.values())
                            elif isinstance(v, list):
                                stack.extend(v)
                            elif isinstance(v, str) and rules.unicode_problem(v):
                                problems.append(f"{table}: {rules.unicode_problem(v)}")
    finally:
        conn.close()
    return problems


@contextmanager
def published_colours(trained_colours):
    """A server on a copy of the trained colours workspace, its iteration published as "live":
    yields (ws, handle, api, info)."""
    from cvlab.service import start_background
    from cvlab.workspace import Workspace
    path, info = trained_colours()
    ws = Workspace(path)
    handle = start_background(ws, rate_limits=False)
    api = Api(handle.endpoint, handle.training_key, handle.prediction_key)
    r = api.t("POST", f"/projects/{info['project_id']}/iterations/{info['iteration_id']}/publish",
              params={"publishName": "live", "predictionId": handle.prediction_resource_id})
    assert r.status_code == 200, r.text
    try:
        yield ws, handle, api, dict(info, root=path.parent)
    finally:
        handle.stop()
        ws.close()
