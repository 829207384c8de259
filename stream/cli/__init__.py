"""The ``semstream`` command line: ``main`` and one module per group of subcommands.

This sub-package holds every CLI module of ``stream`` (``models``, ``schedule``, ``peers``
(send / receive / run), ``experiment``); ``jscc``, ``dynbg`` and ``interp`` keep theirs in
their own ``cli`` module.

Each package contributes its own subcommands through a ``register(subparsers)``
function in its ``cli`` module; handlers import heavy dependencies (torch, mediapipe)
only when they run, so ``semstream --help`` stays fast. Bad input ends the command
with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# OpenMP workers that spin while waiting made torch ~6x slower on a shared 2-core
# machine; passive waiting must be chosen before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from jscc.zoo import ModelFileError

# Modules whose register(subparsers) adds subcommands, in help order.
COMMAND_MODULES = ("stream.cli.models", "stream.cli.schedule", "jscc.cli", "dynbg.cli",
                   "interp.cli", "stream.cli.peers", "stream.cli.live",
                   "stream.cli.experiment")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="semstream",
        description="Semantic-aware video streaming over noisy wireless links.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that package part is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``semstream`` console command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except (ModelFileError, ValueError, OSError) as exc:
        print(f"semstream {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"semstream {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)

