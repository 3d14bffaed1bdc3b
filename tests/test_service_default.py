"""The shipped model as served: seed-enhanced muons land where the seeds are (needs models/default).

The tiny test model is trained for 40 steps, too few for its generator to follow its aux inputs the
way the discriminator's aux heads read them, so this property is checked on the real model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_service import Server, muons_from, npy_bytes, plain, pt_of

DEFAULT = Path(__file__).resolve().parents[1] / "models" / "default"
pytestmark = pytest.mark.skipif(not (DEFAULT / "model.json").is_file(), reason="models/default is not there yet")


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with Server(DEFAULT) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def test_enhanced_from_high_pt_seeds_concentrates_there(client: httpx.Client) -> None:
    reference = muons_from(plain(client, 40_000, seed=31))
    cut = float(np.quantile(pt_of(reference), 0.95))
    seeds = reference[pt_of(reference) > cut]
    response = client.post(
        "/v1/muons/enhanced", params={"n": 20_000, "seed": 5, "format": "npy"}, content=npy_bytes(seeds[:, :7])
    )
    muons = muons_from(response)
    above = np.mean(pt_of(muons) > cut)
    print(
        f"enhanced: {above:.0%} of muons above the seeds' pT cut {cut:.2f} GeV/c (plain: 5%), "
        f"ESS {float(response.headers['X-Effective-Sample-Size']):.0f} of {len(muons)}"
    )
    assert above > 0.2
    # Weighted, the enhanced sample gives the plain rate back (0.5% covers the cut's own uncertainty).
    weight, tail = muons[:, -1].astype(np.float64), pt_of(muons) > cut
    error = np.sqrt((weight[tail] ** 2).sum()) / len(muons)
    assert weight[tail].sum() / len(muons) == pytest.approx(0.05, abs=4 * error + 0.005)


def test_boosted_pt_fills_the_tail_of_the_shipped_model(client: httpx.Client) -> None:
    n = 50_000
    reference = muons_from(plain(client, n, seed=41))
    cut = float(np.quantile(pt_of(reference), 0.99))
    boosted = muons_from(
        client.post("/v1/muons/boosted", json={"n": n, "seed": 42, "format": "npy", "scale": {"pt": 3}})
    )
    factor = np.mean(pt_of(boosted) > cut) / 0.01
    print(f"boosted pt x3 on models/default: {factor:.1f}x more muons above pT {cut:.2f} GeV/c per muon")
    assert factor > 3
