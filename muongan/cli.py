"""``muongan SUBCOMMAND ...``: dispatches to the module that implements each subcommand.

A subcommand's module is imported only when it runs, so ``muongan serve`` never loads TensorFlow.
Each module provides ``configure(parser)`` to declare its options and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from muongan.errors import UserError

COMMANDS: dict[str, tuple[str, str]] = {
    "sample": ("training.reference.command", "make a weighted reference muon sample with Pythia 8"),
    "describe": ("training.command_describe", "summarise a muon sample set (files, folders, globs) before training"),
    "train": ("training.command_train", "train a GAN on a muon sample and export it to a model folder"),
    "evaluate": ("training.command_evaluate", "figures of merit and a PNG report of a model vs a reference"),
    "serve": ("service.command_serve", "run the HTTP service"),
    "generate": ("service.command_generate", "generate muons to a file, in-process or from a server"),
    "plot": ("service.command_plot", "plot muons from a file or a model to PNG"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="muongan", description=__doc__.splitlines()[0] if __doc__ else None)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        subparsers.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints usage or the error and exits
        return 2
    module_name, help_text = COMMANDS[argv[0]]
    module = importlib.import_module(module_name)
    command = argparse.ArgumentParser(prog=f"muongan {argv[0]}", description=help_text)
    module.configure(command)
    args = command.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except UserError as error:
        print(f"muongan {argv[0]}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
