"""``cvlab portal``: open the local customvision.ai in the browser, starting ``cvlab serve`` first unless one already
answers on the address. Same options as ``cvlab serve``, plus ``--no-browser``."""
from __future__ import annotations

import argparse
import socket
import threading
import time
import webbrowser

import requests

MARKER = "Custom Vision (cvlab)"  # the portal page's title


def configure(parser: argparse.ArgumentParser) -> None:
    from cvlab.cli import serve as serve_cli
    serve_cli.configure(parser)
    parser.add_argument("--no-browser", action="store_true", help="print the portal's address, open nothing")


def portal_answers(url: str, timeout: float = 1.0) -> bool:
    """A cvlab portal is served at ``url`` (a browser's request, so the page rather than the JSON summary)."""
    try:
        r = requests.get(url, headers={"Accept": "text/html"}, timeout=timeout)
    except requests.RequestException:
        return False
    return r.status_code == 200 and MARKER in r.text


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _open_when_up(url: str, browser: bool, give_up_s: float = 120.0) -> None:
    end = time.monotonic() + give_up_s
    while time.monotonic() < end:
        if portal_answers(url):
            print(f"  Portal:                  {url}  (sign in with the training key above)", flush=True)
            if browser:
                webbrowser.open(url)
            return
        time.sleep(0.3)


def run(args: argparse.Namespace) -> int:
    from cvlab.cli import serve as serve_cli
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    if args.port and portal_answers(f"http://{shown}:{args.port}/"):
        url = f"http://{shown}:{args.port}/"
        print(f"cvlab portal already served at {url}: opening it. Sign in with the training key `cvlab serve` "
              "printed.")
        if not args.no_browser:
            webbrowser.open(url)
        return 0
    if not args.port:
        args.port = _free_port(args.host)
    url = f"http://{shown}:{args.port}/"
    threading.Thread(target=_open_when_up, args=(url, not args.no_browser), daemon=True).start()
    return serve_cli.run(args)
