"""The tail-biased source (``muongan sample --bias tail``): its weighted estimates agree with the unbiased
source's within errors that count weights and showers, in the bulk and in the tails, and its metadata
says how it was biased."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from service.samples import Sample
from training.reference import driver
from training.reference.biasing import Biasing
from training.reference.driver import generate
from training.reference.events import Hadrons
from training.reference.settings import BLOCKS, SourceSettings

POT = 3000
UNBIASED = SourceSettings(task_pot=POT)
BIASED = replace(UNBIASED, tail_biasing=True)


@pytest.fixture(scope="module")
def samples() -> tuple[Sample, Sample]:
    """Both sources on the same POT, different seeds (independent), in batches of 250 protons so that
    errors can be taken over many independent batches."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(driver, "_BATCH", 250)
        return (
            generate(POT, seed=11, settings=UNBIASED, progress=False),
            generate(POT, seed=12, settings=BIASED, progress=False),
        )


def _columns(sample: Sample) -> dict[str, np.ndarray]:
    m = sample.muons.astype(np.float64)
    return {
        "pT": np.hypot(m[:, 4], m[:, 5]),
        "p": np.linalg.norm(m[:, 4:7], axis=1),
        "r": np.hypot(m[:, 1], m[:, 2]),
        "z": m[:, 3],
        "weight": m[:, 7],
    }


def _rates(sample: Sample, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rates per POT of the muons in each of ``masks`` (k, n) and their variances, taken over the file's
    independent batches run by run (Var of a sum of batches = batches x their sample variance): errors
    that honour the weights and the showers' and split decays' correlations."""
    weight = _columns(sample)["weight"]
    blocks = json.loads(sample.metadata[BLOCKS])
    edges = np.concatenate([[0], np.cumsum(blocks["rows"])])
    sums = np.array([[np.sum(weight[a:b][mask[a:b]]) for a, b in itertools.pairwise(edges)] for mask in masks])
    runs = np.array(blocks["run"])
    variance = np.zeros(len(masks))
    for run in set(runs):
        part = sums[:, runs == run]
        if part.shape[1] > 1:
            variance += part.shape[1] * part.var(axis=1, ddof=1)
    return sums.sum(axis=1) / POT, variance / POT**2


def _compare(unbiased: Sample, biased: Sample, masks_u: np.ndarray, masks_b: np.ndarray) -> tuple[np.ndarray, float]:
    """Pulls of the biased rates against the unbiased ones, and the chi^2 probability of all of them
    (bins empty in both are left out)."""
    rate_u, var_u = _rates(unbiased, masks_u)
    rate_b, var_b = _rates(biased, masks_b)
    filled = var_u + var_b > 0
    pulls = (rate_b - rate_u)[filled] / np.sqrt((var_u + var_b)[filled])
    return pulls, float(stats.chi2.sf(np.sum(pulls**2), len(pulls)))


def test_muons_per_pot_agree(samples: tuple[Sample, Sample]) -> None:
    unbiased, biased = samples
    pulls, _ = _compare(unbiased, biased, np.ones((1, len(unbiased)), bool), np.ones((1, len(biased)), bool))
    assert abs(pulls[0]) < 3.5
    rate_u = float(unbiased.metadata["muons_per_pot"])
    assert float(biased.metadata["muons_per_pot"]) == pytest.approx(rate_u, rel=0.15)


@pytest.mark.parametrize("column", ["pT", "p", "r", "z"])
def test_marginals_agree_in_the_bulk(samples: tuple[Sample, Sample], column: str) -> None:
    """Ten bins at the unbiased sample's weighted deciles: chi^2 of the biased rates against the unbiased."""
    unbiased, biased = (_columns(s) for s in samples)
    x, w = unbiased[column], unbiased["weight"]
    order = np.argsort(x)
    cumulative = np.cumsum(w[order]) / w.sum()
    edges = np.unique(np.concatenate([[-np.inf], np.interp(np.arange(1, 10) / 10, cumulative, x[order]), [np.inf]]))

    def masks(values: np.ndarray) -> np.ndarray:
        return np.array([(values >= lo) & (values < hi) for lo, hi in itertools.pairwise(edges)])

    pulls, p_value = _compare(*samples, masks(x), masks(biased[column]))
    assert p_value > 1e-3, pulls
    assert np.all(np.abs(pulls) < 4), pulls


TAILS = {
    "pT > 1 GeV/c": lambda c: c["pT"] > 1.0,
    "pT > 1.5 GeV/c": lambda c: c["pT"] > 1.5,
    "pT > 2 GeV/c": lambda c: c["pT"] > 2.0,
    "|p| > 100 GeV/c": lambda c: c["p"] > 100,
    "|p| > 150 GeV/c": lambda c: c["p"] > 150,
    "|p| > 50 and pT > 1.5": lambda c: (c["p"] > 50) & (c["pT"] > 1.5),
    "r > 1 cm": lambda c: c["r"] > 1.0,
    "z > 100 cm into the target": lambda c: c["z"] > SourceSettings.target_front_z + 100,
}


def test_every_tail_agrees(samples: tuple[Sample, Sample]) -> None:
    """Rates above each tail threshold; the shield region itself (|p| > 100 and pT > 3) is too rare for
    the unbiased source at this POT (one muon in ~1e5 protons): bench/tail_biasing.py measures it."""
    unbiased, biased = (_columns(s) for s in samples)
    masks_u = np.array([cut(unbiased) for cut in TAILS.values()])
    masks_b = np.array([cut(biased) for cut in TAILS.values()])
    assert np.all(masks_u.sum(axis=1) >= 5)  # each tail has muons to compare
    pulls, p_value = _compare(*samples, masks_u, masks_b)
    assert p_value > 1e-3, dict(zip(TAILS, pulls.round(2), strict=True))
    assert np.all(np.abs(pulls) < 4), dict(zip(TAILS, pulls.round(2), strict=True))


def test_the_biased_file_says_it_is_biased_and_how(samples: tuple[Sample, Sample]) -> None:
    unbiased, biased = samples
    assert json.loads(unbiased.metadata["biasing"]) == {"mode": "none"}
    assert "BIASED" not in unbiased.metadata["generator"]
    how = json.loads(biased.metadata["biasing"])
    assert how["mode"] == "tail" and how["region"] == {"p_min_GeV": 100.0, "pt_min_GeV": 3.0}
    assert how["decay_splits_in_reach"] == BIASED.tail_decay_splits and "exact" in how["weights"]
    assert "TAIL-BIASED" in biased.metadata["generator"]
    assert json.loads(biased.metadata["generator_settings"])["tail_biasing"] is True


def test_hopeless_primary_products_are_rouletted_with_exact_weights() -> None:
    """Products of the proton's collision that could still lead to a muon of the region (150 GeV, any pT)
    are all kept at weight 1; the others (50 GeV) survive with the set chance at weight 1 / chance: the
    expected weight of each stays 1."""
    biasing = Biasing(BIASED)
    n = 40_000
    fast = np.arange(n) % 10 == 0
    momentum = np.where(fast[:, None], [0.5, 0.0, 150.0, 150.0], [3.5, 0.0, 50.0, 50.12])
    ones = np.ones(n)
    hadrons = Hadrons(np.full(n, 211), momentum, np.zeros((n, 3)), ones, ones, ones, ones)
    kept = biasing.primary_roulette(hadrons, np.random.default_rng(3))
    assert np.all(kept.weight[kept.momentum[:, 3] > 100] == 1) and np.sum(kept.momentum[:, 3] > 100) == fast.sum()
    slow_weight = kept.weight[kept.momentum[:, 3] < 100]
    assert np.allclose(slow_weight, 1 / BIASED.tail_primary_chance) and np.allclose(kept.bias, kept.weight)
    expected = (~fast).sum()
    chance = BIASED.tail_primary_chance
    assert slow_weight.sum() == pytest.approx(expected, rel=4 * np.sqrt((1 - chance) / (chance * expected)))


def test_rules_are_the_unbiased_sources_when_off() -> None:
    off, on = Biasing(UNBIASED), Biasing(BIASED)
    momentum = np.array([[3.5, 0.0, 200.0, 200.03], [0.2, 0.0, 50.0, 50.0]])
    assert list(off.decay_splits(momentum)) == [UNBIASED.decay_splits] * 2
    assert list(on.decay_splits(momentum)) == [BIASED.tail_decay_splits, UNBIASED.decay_splits]
    chance, least = np.array([1.0, 1.0]), np.array([0.05, 0.05])
    assert list(off.collision_chance(np.array([200.0, 50.0]), chance, least)) == [1.0, 1.0]
    assert list(on.collision_chance(np.array([200.0, 50.0]), chance, least)) == [1.0, BIASED.tail_soft_chance]
    assert list(on.floors(momentum[:, :3])) == [0.0, UNBIASED.weight_floor]
    assert off.forced_factor("charm") == off.forced_factor("resonance") == 1.0
    assert on.forced_factor("charm") == BIASED.tail_forced_factor
    assert on.forced_factor("resonance") == BIASED.tail_resonance_factor
