"""The reference muon source: the Pythia 8 hadron cascade in SHiP's target and hadron absorber, weighted muons.

``muongan sample`` (:mod:`training.commands.sample`) is the entry point; README.md in this folder
describes the physics model, its approximations and measured figures.
"""
