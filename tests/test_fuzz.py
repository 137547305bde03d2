"""Schema fuzzing (schemathesis) of cvlab's own OpenAPI over HTTP on 127.0.0.1 with valid keys: no request may
produce a 5xx, and every error is Azure's ``{code, message}`` JSON of bounded size. Ids in paths are swapped for
real ones so the fuzzer gets past NotFound into the handlers; operations that would train, export or delete the
fixture keep their generated ids. A second fuzzer sends the hostile classes of issue 22 to every operation that
takes JSON or text: bodies of many values, text that is not valid Unicode (JSON escapes, raw bytes in query
strings, multipart file names): never a 5xx, never a dropped connection, nothing invalid stored."""
from __future__ import annotations

import base64
import json
import os
import re
import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from cvlab.service import start_background
from cvlab.workspace import ImageEntry, Workspace
from helpers import colour_jpeg
from test_reliability_support import stored_text_problems

pytestmark = pytest.mark.timeout(300)

EXAMPLES_PER_OPERATION = int(os.environ.get("CVLAB_FUZZ_EXAMPLES", "4"))  # CI: 4; explore with more
MAX_ERROR_BYTES = 4096  # like Azure's single error: no error body grows with the request
KEEP_GENERATED_IDS = {("POST", "/train"), ("POST", "/export"), ("DELETE", "/{projectId}"),
                      ("DELETE", "/{iterationId}")}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("fuzz") / "ws")
    handle = start_background(ws, rate_limits=False)
    p = ws.create_project("fuzz")
    tags = [ws.create_tag(p.id, n) for n in ("a", "b")]
    ws.create_images(p.id, [ImageEntry(colour_jpeg((i * 40, 90, 200 - i * 30), seed=i), f"{i}.jpg", [tags[i % 2].id])
                            for i in range(4)])
    image_id = ws.get_images(p.id, take=1)[0].id
    ids = {"projectId": p.id, "tagId": tags[0].id, "imageId": image_id}
    yield handle, ws, ids
    handle.stop()
    ws.close()


def _check(response: requests.Response, label: str, failures: list) -> None:
    if response.status_code >= 500:
        failures.append(f"{label}: {response.status_code} {response.text[:300]}")
        return
    if response.status_code < 400:
        return
    if len(response.content) > MAX_ERROR_BYTES:
        failures.append(f"{label}: {response.status_code} error body of {len(response.content)} bytes")
    if response.headers.get("Connection", "").lower() == "close" and response.status_code != 413:
        failures.append(f"{label}: {response.status_code} closed the connection")
    try:
        body = response.json()
    except ValueError:
        failures.append(f"{label}: {response.status_code} with a non-JSON body {response.text[:200]!r}")
        return
    if response.status_code in (401, 429):  # API Management's shape, as on Azure
        body = body.get("error", {}) if isinstance(body, dict) else {}
    if not (isinstance(body, dict) and isinstance(body.get("code"), str) and isinstance(body.get("message"), str)):
        failures.append(f"{label}: {response.status_code} body is not {{code, message}}: {str(body)[:200]}")


def test_schema_fuzzing_finds_no_5xx_and_only_azure_errors(served):
    handle, ws, ids = served
    schema = schemathesis.openapi.from_url(handle.endpoint + "/openapi.json")
    session = requests.Session()
    keys = {"Training-Key": handle.training_key, "Prediction-Key": handle.prediction_key}
    failures: list[str] = []
    calls = 0
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 50  # the whole SDK surface is described

    for op in operations:
        keep = any(op.method.upper() == m and op.path.endswith(end) for m, end in KEEP_GENERATED_IDS)

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            nonlocal calls
            if not keep:
                for name, value in ids.items():
                    if case.path_parameters and name in case.path_parameters:
                        case.path_parameters[name] = value
            case.headers = {**(case.headers or {}), **keys}
            label = f"{op.method.upper()} {case.formatted_path} query={str(case.query)[:120]}"
            try:
                response = case.call(base_url=handle.endpoint, session=session, timeout=60)
            except requests.RequestException as exc:  # the server dropped the connection: as bad as a 5xx
                failures.append(f"{label}: {type(exc).__name__}: {exc}")
                return
            calls += 1
            _check(response, label, failures)

        run()

    assert calls >= len(operations) * 2
    assert session.get(handle.endpoint + "/customvision/v3.4-preview/training/projects",
                       headers=keys, timeout=30).status_code == 200
    assert ws.check(verify_hashes=False)["sqlite_integrity"] == ["ok"]
    assert not failures, f"{len(failures)} of {calls} fuzzed requests failed:\n" + "\n".join(failures[:40])


def test_fuzzed_image_bodies_never_5xx(served):
    """Random bytes as image uploads and base64 contents: always a 4xx/207 with Azure's codes, never a 5xx."""
    import random
    handle, ws, ids = served
    rnd = random.Random(0)
    base = handle.endpoint + f"/customvision/v3.4-preview/training/projects/{ids['projectId']}"
    headers = {"Training-Key": handle.training_key}
    good = colour_jpeg((10, 200, 10), seed=1234)
    failures: list[str] = []
    for i in range(30):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 40)):  # flip bytes, then maybe truncate
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        if rnd.random() < 0.5:
            data = data[: rnd.randrange(1, len(data))]
        r = requests.post(base + "/images", data=bytes(data), timeout=60,
                          headers={**headers, "Content-Type": "application/octet-stream"})
        _check(r, f"raw #{i}", failures)
        r = requests.post(base + "/images/files", timeout=60, headers=headers,
                          json={"images": [{"name": f"f{i}.jpg", "contents": base64.b64encode(bytes(data)).decode()}]})
        _check(r, f"files #{i}", failures)
    assert not failures, "\n".join(failures)
    assert ws.check()["ok"] or ws.check()["repairable"]


HOSTILE_STRINGS = ["q\ud800", "\udfff", "a\ud83d", "\u2028", "\x85", "$\\undefined{x}$"]
HOSTILE_QUERY = ["%ED%A0%80", "%FF", "x%C3", "%F4%90%80%80"]  # a surrogate's bytes, not UTF-8, cut, past U+10FFFF


def _body_properties(spec: dict, op: dict) -> list[str]:
    """The JSON property names an operation's request body declares (its $ref'd schema), else common ones (the
    routes that read JSON themselves: metadata, training parameters, quiz scores)."""
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    declared = spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
    return list(declared) or ["name", "note", "quiz", "selectedTags"]


def test_hostile_bodies_and_text_on_every_operation_never_5xx_and_store_nothing_invalid(served):
    """Issue 22's classes, systematically, on every operation of the OpenAPI: each body property given a lone
    surrogate (as JSON sends it, \\udXXX), a lone surrogate as a key, or 25,000 values; each text query parameter
    given bytes that are not UTF-8; multipart file names that are not UTF-8. Never a 5xx, a big error or a dropped
    connection, and nothing that is not valid Unicode is stored."""
    handle, ws, ids = served
    spec = requests.get(handle.endpoint + "/openapi.json", timeout=30).json()
    keys = {"Training-Key": handle.training_key, "Prediction-Key": handle.prediction_key}
    session = requests.Session()
    failures: list[str] = []
    calls = 0
    operations = [(path, method, op) for path, methods in spec["paths"].items() for method, op in methods.items()
                  if method in ("post", "patch", "delete", "get")
                  and not any(path.endswith(end) and method.upper() == m for m, end in KEEP_GENERATED_IDS)]
    assert len(operations) >= 50

    def send(method, url, label, data=None, ctype="application/json"):
        nonlocal calls
        try:
            r = session.request(method, url, data=data, timeout=60, headers={**keys, "Content-Type": ctype})
        except requests.RequestException as exc:
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            return
        calls += 1
        _check(r, label, failures)

    for n, (path, method, op) in enumerate(operations):
        url = handle.endpoint + re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.UUID(int=1))), path)
        m = method.upper()
        if m in ("POST", "PATCH"):
            for k, prop in enumerate(_body_properties(spec, op)[:6]):
                bad = HOSTILE_STRINGS[(n + k) % len(HOSTILE_STRINGS)]
                for doc in ({prop: bad}, {prop: {bad: "x"}}, {prop: [bad]}, {prop: [0] * 25_000}):
                    send(m, url, f"{m} {path} {prop}={str(doc)[:60]}", json.dumps(doc))  # ensure_ascii: \udXXX
        for k, param in enumerate(p["name"] for p in op.get("parameters", []) if p.get("in") == "query"
                                  and p.get("schema", {}).get("type", "string") == "string"):
            raw = HOSTILE_QUERY[(n + k) % len(HOSTILE_QUERY)]
            send(m, f"{url}?{param}={raw}", f"{m} {path} ?{param}={raw}", "{}" if m in ("POST", "PATCH") else None)
    for raw in (b"\xed\xa0\x80.jpg", b"\xff\xfe.jpg", "\u2028.jpg".encode()):  # multipart file names
        part = (b'--xyz\r\nContent-Disposition: form-data; name="imageData"; filename="' + raw + b'"\r\n\r\n'
                + colour_jpeg((9, 9, 200), seed=len(raw)) + b"\r\n--xyz--\r\n")
        send("POST", handle.endpoint + f"/customvision/v3.4-preview/training/projects/{ids['projectId']}/images",
             f"multipart name {raw!r}", part, "multipart/form-data; boundary=xyz")
    assert calls >= 3 * len(operations)
    assert session.get(handle.endpoint + "/customvision/v3.4-preview/training/projects", headers=keys,
                       timeout=30).status_code == 200
    assert not failures, f"{len(failures)} of {calls} hostile requests failed:\n" + "\n".join(failures[:40])
    assert stored_text_problems(ws) == []
