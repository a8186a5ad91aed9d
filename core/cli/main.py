"""Entry point of ``r2c-review``: builds the parser and turns user errors into one line."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from core import __version__
from core.errors import R2CError, os_reason

# Modules under core.cli that register subcommands, in the order shown by --help.
COMMAND_MODULES = ("imaging_cmds", "model_cmds", "study_cmds", "mrmc_cmds", "train_cmds", "synth_cmds")

Handler = Callable[[argparse.Namespace], int]


def build_parser(extra: Sequence[Callable[[argparse._SubParsersAction], None]] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r2c-review",
        description="Blinded reader studies and local viewing of R2C-GAN restored chest X-rays.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    add_unsigned_models_flag(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"core.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"core.cli.{name}":
                continue
            raise
        module.register(sub)
    for register in extra:
        register(sub)
    return parser


def add_unsigned_models_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-unsigned-models", action="store_true",
                        help="use model files whose manifest gives no sha256 (they cannot be verified)")


def run(argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> int:
    args = parser.parse_args(argv)
    if getattr(args, "allow_unsigned_models", False):
        os.environ["R2C_ALLOW_UNSIGNED_MODELS"] = "1"  # read by core.weights.model_file
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except R2CError as exc:
        print(f"r2c-review: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except OSError as exc:
        # The machine refused a read or write (disk full, no permission, a folder gone): one line
        # naming the file; the traceback only with --verbose.
        logging.getLogger(__name__).info("details:", exc_info=True)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"r2c-review: error: {where}{os_reason(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("r2c-review: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, build_parser())


if __name__ == "__main__":
    sys.exit(main())
