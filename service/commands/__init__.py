"""The service's subcommands of ``muongan`` (:mod:`muongan.cli` imports each only when it runs).

``serve`` (:mod:`~service.commands.serve`), ``generate`` (:mod:`~service.commands.generate`, in-process or
from a server) and ``plot`` (:mod:`~service.commands.plot`); each has ``configure(parser)`` and ``run(args)``.
"""
