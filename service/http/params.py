"""Query parameters shared by every route that addresses a seed's muon stream, documented once with units."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from service.contract.bounds import MAX_SEED, MAX_START

Format = Literal["arrow", "npy", "csv", "root"]
FORMAT_HELP = "Body format: arrow (Arrow IPC stream), npy, csv or root (FairShip TTree, bounded n, not streamed)"
N_HELP = "Number of muons to return (rows)"
SEED_HELP = "Seed of the random stream (0 to 2^64-1); the same seed and rows always give the same muons"
START_HELP = "Index of the first muon in the seed's stream; [start, start+n) of one seed never overlaps another range"

N = Annotated[int, Query(ge=0, description=N_HELP)]
Seed = Annotated[int, Query(ge=0, le=MAX_SEED, description=SEED_HELP)]
Start = Annotated[int, Query(ge=0, le=MAX_START, description=START_HELP)]
FormatQuery = Annotated[Format, Query(description=FORMAT_HELP)]
