"""Every bound a request must respect, defined once.

The server's schema (:mod:`service.http.routers.muons`, :mod:`service.http.params`), the request values the
client sends and the CLI runs in-process (:mod:`service.contract.modes`), and the CLI's own options all check
these, so a request the server refuses is refused in-process too, with the same limit in the message.
"""

from __future__ import annotations

MAX_SEED = 2**64 - 1  # a seed is one half of a 64-bit Philox key
MAX_START = 2**62  # keeps start + n and every block index far inside 64 bits
# Boosted aux scales: 1 is plain; at 10 the far draws already reach the clip at MAX_AUX (about 60 before it).
MIN_SCALE, MAX_SCALE = 1.0, 10.0
# Largest aux fed to a generator or accepted from a user (custom uploads) or from the aux heads (seed muons).
# Plain aux is a one-tailed standard normal (P(aux > 10) = 1.5e-23), so training samples reach about 6;
# beyond, the generator extrapolates: models/default makes pz of 1e6 GeV/c at aux 10 in every group and
# infinite pz at 40 in the pz group (NaN muons, found by the reliability fuzzing).
MAX_AUX = 10.0
# Seed-enhanced smearing, in standard-normal units of the copula's space: wider than 5 is no longer "around
# the seeds". The plain share of an enhanced request is in [0, 1).
MAX_SMEAR = 5.0
MAX_PLOT_N = 2_000_000  # a plot holds its whole sample in memory
