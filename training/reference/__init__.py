"""The reference muon source: Pythia 8 on a thick Mo-like target, muons weighted per proton on target.

``muongan sample`` (:mod:`training.reference.command`) is the entry point; README.md in this folder
describes the physics model, its approximations and measured figures.
"""
