"""The training-side ``muongan`` subcommands; each module has ``configure(parser)`` and ``run(args)``.

They import their heavy dependencies (TensorFlow, Pythia) inside ``run``, so ``muongan --help`` stays fast.
"""
