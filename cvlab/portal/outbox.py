"""Training notification e-mails. In cvlab they are written to ``<workspace>/outbox/*.eml`` instead of being sent.

Azure e-mails ``notificationEmailAddress`` when an Advanced training ends (the Train dialog's "Send me an email
when training is complete"). cvlab has no mail server and no internet, so the message goes to a file the learner
opens in the portal (gallery gear > Notification e-mails) or in any mail program. A subscription is a small JSON
file under ``outbox/pending/`` until the iteration leaves Training, so a server restart loses nothing.
"""
from __future__ import annotations

import email.message
import email.parser
import email.policy
import email.utils
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from cvlab import rules
from cvlab.errors import CvlabError

SENDER = "Custom Vision (cvlab) <no-reply@cvlab.invalid>"
_lock = threading.Lock()
_watched: set[str] = set()


def folder(ws) -> Path:
    return Path(ws.path) / "outbox"


def _pending_dir(ws) -> Path:
    return folder(ws) / "pending"


def check_address(address: str) -> str:
    """The one e-mail rule (``rules.check_notification_email``); here an address is required."""
    return rules.check_notification_email(address or "")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def subscribe(ws, project_id: str, iteration_id: str, address: str, portal_url: str | None = None) -> dict:
    """Write a notification for ``address`` when the iteration's training ends (at once if it already has)."""
    address = check_address(address)
    it = ws.get_iteration(project_id, iteration_id)  # Azure's NotFound errors for a wrong project or iteration
    pending = _pending_dir(ws)
    pending.mkdir(parents=True, exist_ok=True)
    path = pending / f"{it.id}.json"
    with _lock:
        entry = json.loads(path.read_text()) if path.exists() else {
            "project_id": it.project_id, "iteration_id": it.id, "addresses": [], "portal_url": portal_url}
        if address not in entry["addresses"]:
            entry["addresses"].append(address)
        _write_atomic(path, json.dumps(entry).encode())
    _watch(ws, it.project_id, it.id)
    sent = deliver_due(ws)
    return {"iterationId": it.id, "address": address, "status": "sent" if sent else "pending"}


def _watch(ws, project_id: str, iteration_id: str) -> None:
    """One daemon thread per iteration waits for its training to end, then writes the e-mails."""
    from cvlab.training import wait
    with _lock:
        if iteration_id in _watched:
            return
        _watched.add(iteration_id)

    def run():
        try:
            wait(ws, project_id, iteration_id)
            deliver_due(ws)
        except CvlabError:
            pass  # the iteration or project was deleted meanwhile: deliver_due drops the subscription
        finally:
            with _lock:
                _watched.discard(iteration_id)
    threading.Thread(target=run, name=f"cvlab-outbox-{iteration_id[:8]}", daemon=True).start()


def deliver_due(ws) -> list[Path]:
    """Write the messages of every subscription whose iteration has finished; returns the files written."""
    pending = _pending_dir(ws)
    written: list[Path] = []
    if not pending.is_dir():
        return written
    with _lock:
        for path in sorted(pending.glob("*.json")):
            entry = json.loads(path.read_text())
            try:
                it = ws.get_iteration(entry["project_id"], entry["iteration_id"])
                project = ws.get_project(entry["project_id"])
            except CvlabError:
                path.unlink(missing_ok=True)  # deleted meanwhile: nobody to tell about it
                continue
            if it.status in ("Training", "Queued"):
                continue
            for n, address in enumerate(entry["addresses"]):
                written.append(_write_message(ws, project, it, address, entry.get("portal_url"), n))
            path.unlink(missing_ok=True)
    return written


def _summary(ws, project, it) -> str:
    if it.status != "Completed":
        return f"The training failed: {it.training_error_details or 'no reason was recorded'}."
    try:
        from cvlab.metrics import json_number
        from cvlab.performance import get_iteration_performance
        perf = get_iteration_performance(ws, project.id, it.id)
    except CvlabError:
        return "The iteration is ready."
    ap = "mAP" if project.project_type == "ObjectDetection" else "AP"

    def pct(v):
        v = json_number(v)
        return "n/a" if v is None else f"{v:.1%}"
    return (f"Precision {pct(perf.precision)}, recall {pct(perf.recall)}, {ap} {pct(perf.average_precision)} "
            "at a probability threshold of 50%.")


def _write_message(ws, project, it, address: str, portal_url: str | None, n: int) -> Path:
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    finished = it.last_modified or datetime.now(timezone.utc)
    msg["From"] = SENDER
    msg["To"] = address
    msg["Date"] = email.utils.format_datetime(finished)
    msg["Subject"] = f"Custom Vision: training of {project.name} ({it.name}) {it.status.lower()}"
    link = f"{portal_url.rstrip('/')}/#/projects/{project.id}/performance?iteration={it.id}" if portal_url else None
    lines = [f"The training of your project \"{project.name}\" has ended.", "",
             f"Iteration:      {it.name}", f"Status:         {it.status}",
             f"Training type:  {'Advanced' if it.training_type == 'Advanced' else 'Quick'}"
             + (f", budget {it.reserved_budget_in_hours} h" if it.training_type == "Advanced" else ""), "",
             _summary(ws, project, it), ""]
    if link:
        lines += [f"Performance page: {link}", ""]
    lines += [f"In cvlab this e-mail is written to {folder(ws)} instead of being sent."]
    msg.set_content("\n".join(lines))
    out = folder(ws)
    out.mkdir(parents=True, exist_ok=True)
    stamp = finished.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"{stamp}-{it.id[:8]}-{n}.eml"
    _write_atomic(path, bytes(msg))
    return path


def messages(ws) -> list[dict]:
    """Every e-mail in the outbox, newest first: id (file name), from, to, date, subject and the text."""
    deliver_due(ws)
    out = []
    directory = folder(ws)
    if not directory.is_dir():
        return out
    parser = email.parser.BytesParser(policy=email.policy.default)
    for path in sorted(directory.glob("*.eml"), reverse=True):
        msg = parser.parsebytes(path.read_bytes())
        out.append({"id": path.name, "from": str(msg["From"]), "to": str(msg["To"]), "date": str(msg["Date"]),
                    "subject": str(msg["Subject"]), "text": msg.get_content()})
    return out
