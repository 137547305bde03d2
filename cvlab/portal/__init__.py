"""The portal: a local customvision.ai, a third thin face (after the SDK and the notebooks) over the same core.

The browser app in ``static/`` does everything through the public Training and Prediction REST APIs, sending the
key in the ``Training-Key`` / ``Prediction-Key`` header exactly as the SDK does, so anything the portal does can be
done from code. What the real portal takes from outside those APIs (the resource list behind the settings gear,
the training notification e-mails, the cvlab-only extras on the Performance page) comes from the small router in
``cvlab.portal.router`` under ``/cvlab/portal/``, authenticated by the training key as well.

``mount(app)`` adds both to the service app; ``cvlab serve`` then serves the portal at ``/``.
"""
from __future__ import annotations


def mount(app) -> None:
    """Serve the portal on ``app`` (a ``cvlab.service.create_app`` app): ``/`` for browsers, ``/portal/...``
    static files, and the ``/cvlab/portal/...`` routes."""
    from .web import install
    install(app)
