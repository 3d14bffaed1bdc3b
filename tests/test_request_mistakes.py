"""What a new user trips over: every mistake in a request is refused with a message naming it, never ignored.

A real server on the tiny model (``base_url``), httpx; the CLI through :func:`muongan.cli.main` in-process.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from muongan.cli import main
from service.contract import bounds
from service.contract.modes import Boosted, Custom, Enhanced

SEEDS = np.ones((3, 8), np.float32)


def detail(response: httpx.Response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["detail"])


def test_a_misspelt_query_parameter_is_refused_by_name(client: httpx.Client) -> None:
    text = detail(client.get("/v1/muons", params={"n": 10, "sead": 3}))
    assert "'sead'" in text and "unknown query parameter; /v1/muons takes n, seed, start, format" in text


def test_every_route_refuses_a_query_parameter_it_does_not_know(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operations = [(method, path) for path, methods in paths.items() for method in methods]
    assert len(operations) >= 9
    for method, path in operations:
        text = detail(client.request(method.upper(), path, params={"colour": "red"}))
        assert "'colour'" in text and f"{path} takes" in text, (method, path)
        assert "422" in paths[path][method]["responses"], (method, path)  # the schema says so too


def test_custom_refuses_n_and_says_why(client: httpx.Client) -> None:
    response = client.post("/v1/muons/custom", params={"n": 5}, content=b"", headers={"content-type": "x"})
    assert "one muon per row of the uploaded aux array" in detail(response)


def test_a_query_parameter_given_twice_is_refused(client: httpx.Client) -> None:
    assert "given 2 times" in detail(client.get("/v1/muons?n=10&n=20"))


def test_boosted_without_scale_is_refused(client: httpx.Client) -> None:
    text = detail(client.post("/v1/muons/boosted", json={"n": 10}))
    assert "'scale'" in text and "Field required" in text


@pytest.mark.parametrize("media_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_a_json_body_must_say_it_is_json(client: httpx.Client, media_type: str | None) -> None:
    request = client.build_request("POST", "/v1/muons/boosted", content=b'{"n": 10, "scale": {"pt": 2}}')
    if media_type is not None:
        request.headers["content-type"] = media_type
    text = detail(client.send(request), 415)
    assert "Content-Type: application/json" in text
    assert "415" in client.get("/openapi.json").json()["paths"]["/v1/muons/boosted"]["post"]["responses"]


def test_the_server_schema_states_the_shared_bounds(client: httpx.Client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["Scale"]["properties"]["pt"]["maximum"] == bounds.MAX_SCALE
    assert schemas["Scale"]["properties"]["pt"]["minimum"] == bounds.MIN_SCALE
    assert schemas["Boosted"]["properties"]["start"]["maximum"] == bounds.MAX_START
    assert "scale" in schemas["Boosted"]["required"]


def test_a_scale_the_server_refuses_is_refused_by_the_client_and_in_process(
    client: httpx.Client, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    too_wide = bounds.MAX_SCALE * 2
    served = client.post("/v1/muons/boosted", json={"n": 10, "scale": {"pt": too_wide}})
    assert f"less than or equal to {bounds.MAX_SCALE:g}" in detail(served)
    with pytest.raises(ValueError, match=r"in \[1, 10\]"):
        Boosted({"pt": too_wide})
    out = tmp_path / "wide.npy"
    argv = ["generate", "--model", str(tiny_model), "--n", "10", "--out", str(out), "--no-progress"]
    assert main([*argv, "--scale-pt", f"{too_wide:g}"]) == 2
    assert "aux scales must be in [1, 10]" in capsys.readouterr().err
    assert not out.exists()


def test_enhanced_and_custom_bounds_hold_in_process_too() -> None:
    with pytest.raises(ValueError, match="smear must be in"):
        Enhanced(SEEDS, smear=bounds.MAX_SMEAR + 1)
    with pytest.raises(ValueError, match="plain_fraction"):
        Enhanced(SEEDS, plain_fraction=1.0)
    with pytest.raises(ValueError, match="<= 10"):
        Custom(np.full((2, 4), bounds.MAX_AUX + 1))
