"""Property-based fuzz of the API, driven by docs/openapi.yaml (schemathesis): whatever
the parameters and bodies, a real server answers without a 5xx."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.conftest import _kill_leftovers  # noqa: E402
from tests.server_conftest import TOKEN, Server  # noqa: E402

from guild_jupyter.storage.store import RunStore  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(str(DOC))
OPERATIONS = [(op.path, op.method.upper()) for op in (r.ok() for r in SCHEMA.get_all_operations())]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    home = tmp / "gj-home"
    (tmp / "root").mkdir()
    (tmp / "root" / "train.py").write_text("lr = 0.1\nepochs = 2\nprint(lr, epochs)\n")
    s = Server(tmp, home)
    s.wait_up()
    # a finished run, so some ids are real
    run = s.request("POST", "runs", {"op": "train.py", "flags": {"epochs": 1}})
    yield s, run["id"]
    s.stop()
    _kill_leftovers(RunStore(home, progress=lambda *_: None))


def test_operations_cover_the_document():
    assert len(OPERATIONS) == sum(
        1 for ops in __import__("yaml").safe_load(DOC.read_text())["paths"].values()
        for v in ops if v in ("get", "post", "patch", "delete"))


@pytest.mark.parametrize("path,method", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_server_errors(server, path, method):
    s, run_id = server
    operation = SCHEMA[path][method].ok() if hasattr(SCHEMA[path][method], "ok") else SCHEMA[path][method]
    base = s.url + "guild/api"

    @settings(max_examples=40, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case):
        response = case.call(base_url=base, headers={"Authorization": f"token {TOKEN}"}, timeout=30)
        assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
        if response.status_code >= 400 and response.headers.get("content-type", [""])[0].startswith("application/json"):
            assert json.loads(response.text).get("message")
        # the real run too, for the routes that take an id
        if "{id}" in path and case.path_parameters:
            params = dict(case.path_parameters, id=run_id)
            if "{path}" in path:
                params["path"] = case.path_parameters.get("path", "x")
            case.path_parameters = params
            response = case.call(base_url=base, headers={"Authorization": f"token {TOKEN}"}, timeout=30)
            assert response.status_code < 500, (case.as_curl_command(), response.text[:500])

    check()
