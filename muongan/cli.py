"""``muongan SUBCOMMAND ...``: dispatches to the module that implements each subcommand.

A subcommand's module is imported only when it runs, so ``muongan serve`` never loads TensorFlow.
Each module provides ``configure(parser)`` to declare its options and ``run(args) -> int``.

TensorFlow's C++ start-up logs (oneDNN, CPU features, absl's "before InitializeLog" notice) tell a user
nothing and bury the line that matters; :func:`quiet_tensorflow` silences them before a command that
runs TensorFlow starts.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile

from muongan.errors import UserError

COMMANDS: dict[str, tuple[str, str]] = {
    "sample": ("training.commands.sample", "make a weighted reference muon sample with Pythia 8"),
    "describe": ("training.commands.describe", "summarise a muon sample set (files, folders, globs) before training"),
    "train": ("training.commands.train", "train a GAN on a muon sample and export it to a model folder"),
    "evaluate": ("training.commands.evaluate", "figures of merit and a PNG report of a model vs a reference"),
    "agree": ("training.commands.agree", "do independent reference runs agree in their tails, within their errors?"),
    "serve": ("service.commands.serve", "run the HTTP service"),
    "generate": ("service.commands.generate", "generate muons to a file, in-process or from a server"),
    "plot": ("service.commands.plot", "plot muons from a file or a model to PNG"),
}

# Commands that import TensorFlow (a command that starts to, joins this set).
TENSORFLOW_COMMANDS = frozenset({"train"})


def quiet_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up logs silenced, and keep its later C++ INFO/WARNING lines off.

    ``TF_CPP_MIN_LOG_LEVEL=2`` (unless the user set it) must be in the environment before TensorFlow is
    imported; in TensorFlow 2.21 the lines absl prints while the libraries load ignore it, so the import
    runs with file descriptor 2 on a temporary file, which is replayed only if the import fails.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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
    if argv[0] in TENSORFLOW_COMMANDS:
        quiet_tensorflow()
    try:
        return int(module.run(args) or 0)
    except UserError as error:  # one line per problem, each naming the command
        for line in str(error).splitlines():
            print(f"muongan {argv[0]}: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
