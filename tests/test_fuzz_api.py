"""A short run of the API fuzzers of ``bench/fuzz_api.py`` against a real server with the tiny real model.

The long run (1000+ schema cases, thousands of uploads) is the benchmark; here about a hundred of each,
with fixed seeds so that the same cases run every time. Properties: no 5xx and no dropped connection;
every response as the OpenAPI schema documents it; every request that breaks the schema refused; the
only valid requests refused are those over the server's ``max_n``; every upload answered by a complete
npy body or a 4xx naming the problem.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_service import Server

from bench.fuzz_api import LIMITS, check_upload_response, fuzz_schema, fuzz_uploads, valid_bodies

REFUSED_VALID = "ST202 Schema-valid request rejected"


@pytest.fixture(scope="module")
def fuzz_url(tiny_model: Path) -> Iterator[str]:
    with Server(tiny_model, **LIMITS) as url:
        yield url


def test_schema_fuzzing_finds_no_server_error_and_no_schema_violation(fuzz_url: str) -> None:
    tally = fuzz_schema(fuzz_url, cases_per_operation=10, random_seed=7)
    assert tally.cases >= 90
    assert all(status < 500 for status in tally.statuses), tally.summary()
    assert set(tally.failures) <= {REFUSED_VALID}, tally.summary()
    # Valid requests may be refused only for the server's max_n, or for a bound the schema states itself
    # (schemathesis rounds integers near 2^62 through floats and can judge start = 2^62 + 95 valid).
    reasons = (f"exceeds this server's limit of {LIMITS['max_n']} muons", "Input should be less than or equal to")
    refused = tally.messages.get(REFUSED_VALID, [])
    assert all(any(reason in message for reason in reasons) for message in refused), refused
    assert httpx.get(f"{fuzz_url}/healthz").status_code == 200


def test_upload_fuzzing_gets_complete_bodies_or_named_problems(fuzz_url: str, tmp_path: Path) -> None:
    seeds = np.load(io.BytesIO(httpx.get(f"{fuzz_url}/v1/muons", params={"n": 200, "format": "npy"}).content))
    valid = valid_bodies(seeds, tmp_path)
    tally = fuzz_uploads(fuzz_url, valid, cases=120, random_seed=7)
    assert tally.cases == 120
    assert not tally.failures, tally.summary()
    assert tally.statuses[422] > 0  # broken bodies were sent and refused, each naming its problem
    # The bodies the damage starts from are answered in full. (Damaged ones are answered in full too when a
    # minority of their seeds is beyond what the model can judge: those seeds' aux is clipped into its range.)
    for path, bodies in valid.items():
        params: dict[str, str | int] = {"format": "npy"} if path.endswith("custom") else {"format": "npy", "n": 20}
        for body in bodies:
            response = httpx.post(f"{fuzz_url}{path}", params=params, content=body, timeout=60)
            assert response.status_code == 200 and check_upload_response(response) is None, response.text[:200]
