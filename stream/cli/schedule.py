"""``semstream schedule USERS.json --json OUT.json``: the base-station DP scheduler."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from stream.basestation import Cell, User, schedule

CELL_KEYS = ("alpha", "T", "G", "L", "P_max")
USER_KEYS = ("id", "noise", "D", "C")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``schedule`` command."""
    p = sub.add_parser("schedule", help="choose direct / key information / not send per user "
                       "under a power budget (exact DP on a power grid)")
    p.add_argument("users", type=Path, help='USERS.json: {"alpha","T","G","L","P_max","users":'
                   '[{"id","noise","D","C"}, ...]}')
    p.add_argument("--power-step", type=float, default=None,
                   help="power grid step (same unit as P_max; default P_max/1000)")
    p.add_argument("--json", type=Path, default=None, help="write the decisions here")
    p.set_defaults(func=_run)


def _number(obj: dict, key: str, where: str) -> float:
    if key not in obj:
        raise ValueError(f"{where}: missing key {key!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: {key!r} must be a finite number, got {value!r}")
    return float(value)


def parse_problem(text: str, source: str = "input") -> tuple[Cell, list[User]]:
    """Parse USERS.json text into a Cell and its users; ValueError names what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: expected a JSON object at the top level")
    cell = Cell(*(_number(doc, k, source) for k in CELL_KEYS))
    raw_users = doc.get("users")
    if not isinstance(raw_users, list):
        raise ValueError(f"{source}: missing key 'users' (a list of users)")
    users = []
    for i, u in enumerate(raw_users):
        where = f"{source}: users[{i}]"
        if not isinstance(u, dict):
            raise ValueError(f"{where} must be an object")
        if "id" not in u:
            raise ValueError(f"{where}: missing key 'id'")
        users.append(User(str(u["id"]), *(_number(u, k, where) for k in USER_KEYS[1:])))
    return cell, users


def _run(args: argparse.Namespace) -> int:
    cell, users = parse_problem(args.users.read_text(), str(args.users))
    step = args.power_step if args.power_step is not None else cell.P_max / 1000 or 1.0
    result = schedule(cell, users, step)
    out = {
        "total_quality": result.total_quality,
        "total_power": result.total_power,
        "power_step": step,
        "decisions": [d.__dict__ for d in result.decisions],
    }
    for d in result.decisions:
        print(f"{d.id:>8s}  x={d.x:+d}  power={d.power:10.4g}  {d.reason}")
    print(f"total quality {result.total_quality:.4g}, total power {result.total_power:.4g} "
          f"of {cell.P_max:.4g}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0
