"""Progress (a tqdm bar, widgets in notebooks, plus the caller's callback) and cancellation of one training."""
from __future__ import annotations

import threading


class Progress:
    """One tqdm bar (tqdm.auto: a widget in notebooks) plus the ``progress(fraction, message)`` callback."""

    def __init__(self, name: str, callback=None, show: bool = True):
        from tqdm.auto import tqdm

        self.callback = callback
        self.bar = tqdm(total=1000, desc=name, disable=not show, leave=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed, about {remaining} left {postfix}")
        self.at = 0

    def __call__(self, fraction: float, message: str = "") -> None:
        target = int(1000 * min(max(fraction, 0.0), 1.0))
        if target > self.at:
            self.bar.update(target - self.at)
            self.at = target
        if message:
            self.bar.set_postfix_str(message, refresh=True)
        if self.callback is not None:
            self.callback(min(max(fraction, 0.0), 1.0), message)

    def span(self, lo: float, hi: float):
        """A progress callback for the part ``lo``..``hi`` of the whole."""
        return lambda f, msg="": self(lo + (hi - lo) * f, msg)

    def close(self):
        """Close the bar."""
        self.bar.close()


class CancelFlag:
    """Cancellation as both a callable and an Event-like ``is_set()``, whichever the training loop polls."""

    def __init__(self, event: threading.Event, external):
        self.event, self.external = event, external

    def is_set(self) -> bool:
        """Whether the training was asked to stop."""
        if self.event.is_set():
            return True
        if self.external is None:
            return False
        if isinstance(self.external, threading.Event):
            return self.external.is_set()
        return bool(self.external())

    __call__ = is_set
