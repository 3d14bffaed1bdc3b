"""Offline training of the muon GAN (TensorFlow 2), its export to ONNX, its evaluation and the reference source.

Subpackages, each importing only from those listed before it (``tests/test_layout.py`` holds them to it):

- :mod:`training.config`: every hyper-parameter of a run (``TrainConfig``);
- :mod:`training.reference`: the Pythia 8 hadron-cascade source of weighted reference muons;
- :mod:`training.parameterisation`: physical muons <-> bounded features, as TensorFlow ops;
- :mod:`training.preparation`: a sample set streamed into features, rareness and weighted batches;
- :mod:`training.model`: the networks, the marginal calibration and the ONNX export;
- :mod:`training.evaluation`: figures of merit of an exported model against a reference;
- :mod:`training.loop`: the GAN training loop;
- :mod:`training.commands`: the ``muongan`` subcommands ``sample``, ``describe``, ``train``, ``evaluate``, ``agree``.
"""
