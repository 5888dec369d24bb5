"""docs/openapi.yaml is true: its paths and verbs are exactly the app's routes, and real
responses validate against its schemas (jsonschema, OpenAPI 3.1 = JSON Schema 2020-12)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.server_conftest import (  # noqa: F401  (fixtures)
    api, gj_store, http_server, http_server_client, jp_server_config, script, wait_for,
)

pytest_plugins = ("pytest_jupyter.jupyter_server",)

DOC = yaml.safe_load((Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml").read_text())
VERBS = ("get", "post", "patch", "delete", "put")


def app_routes():
    from guild_jupyter.server.handlers import ROUTES

    out = {}
    for pattern, handler in ROUTES:
        path = "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: "{" + ("id" if m.group(1) == "run_id" else m.group(1)) + "}",
                            pattern)
        out[path] = {v for v in VERBS if v in handler.__dict__}
    return out


def test_document_lists_exactly_the_routes():
    documented = {p: {v for v in ops if v in VERBS} for p, ops in DOC["paths"].items()}
    assert documented == app_routes()


def test_routes_registered_in_the_server_are_the_documented_ones(jp_serverapp):
    base = jp_serverapp.web_app.settings["base_url"]
    prefix = base + "guild/api/"
    found = set()
    for rule in jp_serverapp.web_app.wildcard_router.rules + jp_serverapp.web_app.default_router.rules:
        target = getattr(rule, "target", None)
        for sub in getattr(target, "rules", [rule]):
            regex = getattr(sub.matcher, "regex", None)
            if regex is not None and regex.pattern.startswith(prefix):
                found.add(regex.pattern)
    assert len(found) == len(DOC["paths"])


def validator(ref):
    schema = {"$ref": ref, "components": DOC["components"]}
    return jsonschema.Draft202012Validator(schema)


def check(body, ref):
    errors = sorted(validator(ref).iter_errors(body), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


async def test_real_responses_match_the_schemas(api, jp_ws_fetch, gj_store, script):
    ws = await jp_ws_fetch("guild", "api", "events")
    code, run = await api("POST", "runs", body={"op": script, "flags": {"epochs": 2}, "tags": ["t"]})
    assert code == 201
    check(run, "#/components/schemas/Run")
    rid = run["id"]
    events = []
    while True:
        msg = json.loads(await ws.read_message())
        check(msg, "#/components/schemas/Event")
        events.append(msg)
        if msg["type"] == "status" and msg["status"] in ("completed", "failed"):
            break
    ws.close()
    assert {"hello", "run-created", "status", "output", "scalars"} <= {e["type"] for e in events}
    for path, params, ref in [
        (("runs",), None, "RunList"),
        (("runs",), {"columns": "flags", "sort": "scalars.loss", "limit": "1"}, "RunList"),
        (("runs", rid), None, "Run"),
        (("runs", rid, "output"), None, "Output"),
        (("runs", rid, "scalars"), None, "Scalars"),
        (("runs", rid, "files"), None, "FileList"),
        (("compare",), {"runs": rid}, "Comparison"),
    ]:
        code, body = await api("GET", *path, params=params)
        assert code == 200, body
        check(body, f"#/components/schemas/{ref}")
    code, body = await api("PATCH", "runs", rid, body={"label": "x", "add_tags": ["u"]})
    check(body, "#/components/schemas/Run")
    for method, path, body in [("GET", ("runs", "f" * 32), None), ("POST", ("runs",), "{"),
                               ("POST", ("runs", rid, "stop"), None)]:
        code, reply = await api(method, *path, body=body)
        assert 400 <= code < 500
        check(reply, "#/components/schemas/Error")
    code, body = await api("DELETE", "runs", rid)
    check(body, "#/components/schemas/Run")


@pytest.mark.parametrize("name", sorted(DOC["components"]["schemas"]))
def test_schemas_are_valid_json_schema(name):
    jsonschema.Draft202012Validator.check_schema(DOC["components"]["schemas"][name])
