"""Security of the service: optional API key, CORS off unless configured, no pickle, no path to choose.

Real uvicorn servers on loopback ports with the tiny real model; the API key and CORS origins are
ordinary settings (``MUONGAN_API_KEY``, ``MUONGAN_CORS_ORIGINS``).
"""

from __future__ import annotations

import ast
import io
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from test_service import Server, muons_from, plain

from service.client import MuonClient, MuonServiceError
from service.http.settings import Settings

KEY = "k3y-0f-the-muon-service"
ORIGIN = "https://ship.example"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def keyed_url(tiny_model: Path) -> Iterator[str]:
    with Server(tiny_model, api_key=KEY, cors_origins=f"{ORIGIN}, https://other.example") as url:
        yield url


@pytest.fixture(scope="module")
def open_url(tiny_model: Path) -> Iterator[str]:
    with Server(tiny_model) as url:
        yield url


# API key.

WRONG_AUTHORIZATIONS = {
    "none": {},
    "empty": {"Authorization": ""},
    "scheme only": {"Authorization": "Bearer"},
    "wrong key": {"Authorization": "Bearer not-the-key"},
    "a prefix of the key": {"Authorization": f"Bearer {KEY[:-1]}"},
    "the key and more": {"Authorization": f"Bearer {KEY}x"},
    "another scheme": {"Authorization": f"Basic {KEY}"},
    "key without scheme": {"Authorization": KEY},
    "in another header": {"X-API-Key": KEY},
}


@pytest.mark.parametrize("headers", WRONG_AUTHORIZATIONS.values(), ids=list(WRONG_AUTHORIZATIONS))
def test_without_the_right_key_every_protected_route_is_401(keyed_url: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=keyed_url, headers=headers, timeout=30) as client:
        for method, path in [("GET", "/v1/muons?n=5"), ("POST", "/v1/muons/boosted"), ("GET", "/v1/model"),
                             ("GET", "/metrics"), ("GET", "/v1/plot"), ("GET", "/v1/no-such-route")]:  # fmt: skip
            response = client.request(method, path)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in response.json()["detail"]


def test_with_the_key_the_service_answers_and_health_and_docs_need_none(keyed_url: str) -> None:
    with httpx.Client(base_url=keyed_url, timeout=30) as anonymous:
        for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
            assert anonymous.get(path).status_code == 200, path
        spec = anonymous.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert spec["paths"]["/v1/muons"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    with MuonClient(keyed_url, api_key=KEY) as client:
        muons, info = client.muons(100, seed=3)
        assert muons.shape == (100, 8) and info.count == 100
    with MuonClient(keyed_url, api_key="wrong") as client, pytest.raises(MuonServiceError) as error:
        client.muons(100)
    assert error.value.status_code == 401


def test_the_key_stays_out_of_reprs_and_is_off_by_default() -> None:
    assert KEY not in repr(Settings(api_key=KEY))
    assert Settings().api_key == "" and Settings().cors_origins == ""


# CORS.


def test_cors_is_off_by_default(open_url: str) -> None:
    with httpx.Client(base_url=open_url, timeout=30) as client:
        response = plain(client, 5)
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
        simple = client.get("/v1/muons", params={"n": 5}, headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in simple.headers
        preflight = client.options("/v1/muons", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
        assert preflight.status_code == 405 and "access-control-allow-origin" not in preflight.headers


def test_cors_admits_only_the_configured_origins(keyed_url: str) -> None:
    asks = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    with httpx.Client(base_url=keyed_url, timeout=30) as client:
        preflight = client.options("/v1/muons", headers={"Origin": ORIGIN, **asks})
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        stranger = client.options("/v1/muons", headers={"Origin": "https://evil.example", **asks})
        assert stranger.status_code == 400 and "access-control-allow-origin" not in stranger.headers
        answer = client.get("/v1/muons", params={"n": 5}, headers={"Origin": ORIGIN, "Authorization": f"Bearer {KEY}"})
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert "x-muon-count" in answer.headers["access-control-expose-headers"].lower()
        refused = client.get("/v1/muons", params={"n": 5}, headers={"Origin": ORIGIN})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN


# No pickle anywhere.

UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "torch"}
UNSAFE_CALLS = {"read_pickle", "loads", "load"}


def _python_files() -> list[Path]:
    return [path for folder in ("service", "training", "muongan", "bench") for path in (ROOT / folder).rglob("*.py")]


def test_no_code_path_can_unpickle() -> None:
    """No pickle-family import; no np.load that allows pickles (numpy's default refuses them); no pickle.loads,
    yaml.load or read_pickle; no np.save of object arrays."""
    problems = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                problems += [f"{where} imports {name}" for name in names if name.split(".")[0] in UNSAFE_MODULES]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = ast.unparse(node.func.value)
                keywords = {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords}
                if (
                    node.func.attr == "load"
                    and owner in {"np", "numpy"}
                    and keywords.get("allow_pickle", "False") != "False"
                ):
                    problems.append(f"{where} np.load with allow_pickle={keywords['allow_pickle']}")
                if node.func.attr in UNSAFE_CALLS and owner in {"pickle", "yaml", "pd", "pandas"}:
                    problems.append(f"{where} {owner}.{node.func.attr}")
                if node.func.attr == "save" and owner in {"np", "numpy"} and keywords.get("allow_pickle") == "True":
                    problems.append(f"{where} np.save with allow_pickle=True")
    assert len(_python_files()) > 40 and not problems, problems


def test_an_arrow_upload_carrying_a_pickled_extension_type_is_not_unpickled(open_url: str, tmp_path: Path) -> None:
    """pyarrow < 14 unpickled ``arrow.py_extension_type`` metadata on read (CVE-2023-47248)."""
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.mkdir, (str(marker),)

    evil = {b"ARROW:extension:name": b"arrow.py_extension_type", b"ARROW:extension:metadata": pickle.dumps(Payload())}
    fields = [pa.field("xy", pa.float32(), metadata=evil)] + [
        pa.field(name, pa.float32()) for name in ("z", "pt", "pz")
    ]
    schema = pa.schema(fields)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(pa.record_batch([pa.array(np.ones(3, np.float32))] * 4, schema=schema))
    response = httpx.post(f"{open_url}/v1/muons/custom", params={"format": "npy"}, content=sink.getvalue(), timeout=30)
    assert muons_from(response).shape == (3, 8)  # read as the plain float column it is
    assert not marker.exists()


# No path to choose.

ALLOWED_PARAMETERS = {"n", "seed", "start", "format", "smear", "plain_fraction", "kind"}


def test_no_request_can_name_a_model_or_a_file(open_url: str, tiny_model: Path) -> None:
    """The model is the server's setting; requests address muons by numbers only."""
    with httpx.Client(base_url=open_url, timeout=30) as client:
        spec = client.get("/openapi.json").json()
        names = {p["name"] for ops in spec["paths"].values() for op in ops.values() for p in op.get("parameters", [])}
        assert names <= ALLOWED_PARAMETERS, names
        sha = client.get("/v1/model").json()["serving"]["sha256"]["generator.onnx"]
        smuggled = client.get("/v1/muons", params={"n": 5, "model": "../../etc", "model_dir": "/etc", "path": "/"})
        assert smuggled.status_code == 422  # refused by name, not ignored
        assert {error["loc"][1] for error in smuggled.json()["detail"]} == {"model", "model_dir", "path"}
        plain = client.get("/v1/muons", params={"n": 5})
        assert plain.headers["x-model-sha256"] == sha
        assert plain.headers["content-disposition"] == 'attachment; filename="muons-plain-seed0-0-5.arrows"'
        for path in ("/v1/model/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/v1/..%2f..%2fpyproject.toml",
                     f"/{tiny_model}/model.json", "/v1/model/generator.onnx"):  # fmt: skip
            response = client.get(path)
            assert response.status_code in (401, 404), (path, response.status_code)
            assert b"root:" not in response.content and b"[project]" not in response.content
