"""Keyboard shortcuts for widgets: ipywidgets buttons have no key events, so a tiny anywidget listens instead.

It listens to keydown on the enclosing widget marked with the CSS class ``cvlab-keyhost`` (so the keys work
after clicking any of its buttons), or on its own focusable strip when there is no such host. Only the keys
the Python side asked for (``shortcut_keys``), pressed without Ctrl/Alt/Meta, are taken from JupyterLab; everything
else (Shift+Enter, ...) passes through untouched.
"""
from __future__ import annotations

from typing import Callable

import anywidget
import traitlets

_ESM = r"""
function render({ model, el }) {
  const strip = document.createElement("div");
  strip.className = "cvlab-keys";
  strip.tabIndex = 0;
  strip.textContent = model.get("hint");
  el.appendChild(strip);
  model.on("change:hint", () => { strip.textContent = model.get("hint"); });

  const onKey = (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey) return;
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    if (!model.get("shortcut_keys").includes(e.key)) return;
    e.preventDefault();
    e.stopPropagation();
    model.send({ type: "key", key: e.key });
    strip.classList.add("cvlab-keys-hit");
    setTimeout(() => strip.classList.remove("cvlab-keys-hit"), 150);
  };
  let target = strip;
  target.addEventListener("keydown", onKey);
  // Once attached to the page, listen on the whole widget so keys work after clicking its buttons too.
  const attach = () => {
    const host = el.closest(".cvlab-keyhost");
    if (!host) return false;
    target.removeEventListener("keydown", onKey);
    target = host;
    if (!host.hasAttribute("tabindex")) host.tabIndex = -1;
    host.addEventListener("keydown", onKey);
    return true;
  };
  let tries = 0;
  const timer = setInterval(() => { if (attach() || ++tries > 50) clearInterval(timer); }, 100);
  return () => { clearInterval(timer); target.removeEventListener("keydown", onKey); };
}
export default { render };
"""

_CSS = """
.cvlab-keys { font: 12px monospace; color: #555; padding: 4px 8px; border: 1px dashed #bbb;
              border-radius: 4px; cursor: pointer; user-select: none; }
.cvlab-keys:focus, .cvlab-keyhost:focus-within .cvlab-keys { border: 1px solid #1f77b4; color: #1f77b4; }
.cvlab-keys-hit { background: #e3f2fd; }
"""


class KeyShortcuts(anywidget.AnyWidget):
    """A focusable strip that forwards the listed keys (``KeyboardEvent.key`` values) to `on_key` callbacks."""

    _esm = _ESM
    _css = _CSS
    shortcut_keys = traitlets.List(traitlets.Unicode()).tag(sync=True)  # (`keys` is taken by ipywidgets)
    hint = traitlets.Unicode("").tag(sync=True)

    def __init__(self, keys: list[str], hint: str, **kwargs):
        super().__init__(shortcut_keys=list(keys), hint=hint, **kwargs)
        self._callbacks: list[Callable[[str], None]] = []
        self.on_msg(self._on_custom_msg)

    def on_key(self, callback: Callable[[str], None]) -> None:
        self._callbacks.append(callback)

    def press(self, key: str) -> None:
        """What the browser does on a key press; also how tests and scripts drive the shortcuts."""
        if key in self.shortcut_keys:
            for cb in self._callbacks:
                cb(key)

    def _on_custom_msg(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "key":
            self.press(str(content.get("key", "")))
