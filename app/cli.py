"""``r2c-review``: the core command line plus the GUI commands (``gui``, ``demo``).

Qt is imported only when a GUI command runs, so the engine commands stay fast and work
on machines without a display.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli.main import add_unsigned_models_flag, build_parser, run


def _register_gui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the desktop app")
    p.add_argument("paths", nargs="*", help="X-ray files or folders to open")
    p.add_argument("--database", help="study database URL or SQLite file (default: user data dir)")
    p.set_defaults(handler=_gui)
    d = sub.add_parser("demo", help="build a demo study from generated images and open the app on it")
    d.add_argument("--database", help="study database URL or SQLite file (default: user data dir)")
    d.add_argument("--no-gui", action="store_true", help="only build the demo study and print where it is")
    d.set_defaults(handler=_demo)


def _gui(args: argparse.Namespace) -> int:
    from app.main import run_gui

    return run_gui(paths=args.paths, database=args.database)


def _demo(args: argparse.Namespace) -> int:
    from app.main import run_demo

    return run_demo(database=args.database, gui=not args.no_gui)


def _gui_only_parser() -> argparse.ArgumentParser:
    """Just the GUI commands: the engine's command modules import torch, which the window must not wait for."""
    parser = argparse.ArgumentParser(prog="r2c-review")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    add_unsigned_models_flag(parser)
    _register_gui(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args if not a.startswith("-")), None)
    if command in ("gui", "demo") and not {"-h", "--help"} & set(args):
        return run(args, _gui_only_parser())
    return run(args, build_parser(extra=[_register_gui]))


if __name__ == "__main__":
    sys.exit(main())
