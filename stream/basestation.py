r"""Base-station scheduling (paper section IV): per user, send directly, send key
information, or do not send, under a total power budget.

Model. User n sees noise power :math:`N_n`; with transmit power :math:`P`, gain
:math:`G` and loss :math:`L` its rate is :math:`r = \log_2(1 + (PG - L)/N_n)` bits per
channel use. Sending :math:`d` bits within the delay bound :math:`T` needs
:math:`r \ge d/T`, hence the least power

.. math:: P(d) = \frac{N_n (2^{d/T} - 1) + L}{G}.

Direct transmission sends :math:`D_n` (quality :math:`\rho=1`, power :math:`P_{n0}=P(D_n)`);
key information sends :math:`C_n < D_n` (quality :math:`\rho=\alpha`, power
:math:`P_{n1}=P(C_n)`); not sending costs nothing (:math:`\rho=0`). Decisions
:math:`x_n = 0` (direct), :math:`1` (key information), :math:`-1` (not sent) maximise
:math:`\sum_n \rho_n` subject to :math:`\sum_n P_n \le P_{max}`.

Solution. Powers are rounded *up* to a grid of step ``power_step`` (so a grid-feasible
plan is feasible in real power), making this a multiple-choice knapsack solved exactly
on the grid by dynamic programming: time :math:`O(N B)` and memory :math:`O(N B)`
bytes for the choice table, with :math:`B = \lfloor P_{max}/\text{step} \rfloor`.
Among plans of equal quality the one with the least grid power is returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NOT_SENT, DIRECT, KEY = -1, 0, 1
QUALITY_DIRECT = 1.0


@dataclass(frozen=True)
class User:
    """One user: noise power N_n, direct payload D_n and key-information payload C_n (bits)."""

    id: str
    noise: float
    D: float
    C: float


@dataclass(frozen=True)
class Cell:
    """Parameters shared by all users: alpha (key-info quality, 0<alpha<1), delay bound T,
    gain G, loss L and power budget P_max."""

    alpha: float
    T: float
    G: float
    L: float
    P_max: float


@dataclass(frozen=True)
class Decision:
    """The choice for one user: x in {-1, 0, 1}, the power it uses and why."""

    id: str
    x: int
    power: float
    reason: str


@dataclass(frozen=True)
class Schedule:
    """All decisions with their total quality (sum of rho) and total power."""

    decisions: list[Decision]
    total_quality: float
    total_power: float


def required_power(bits: float, noise: float, cell: Cell) -> float:
    """Least transmit power that delivers ``bits`` within T: (N (2^(bits/T) - 1) + L) / G."""
    exponent = bits / cell.T
    if exponent > 1000:  # 2**1000 overflows a float: no finite power suffices
        return math.inf
    return (noise * (2.0**exponent - 1.0) + cell.L) / cell.G


def validate(cell: Cell, users: list[User]) -> None:
    """Raise ValueError naming the first parameter out of range."""
    if not 0 < cell.alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {cell.alpha}")
    for name in ("T", "G"):
        if not getattr(cell, name) > 0:
            raise ValueError(f"{name} must be positive, got {getattr(cell, name)}")
    for name in ("L", "P_max"):
        if not getattr(cell, name) >= 0:
            raise ValueError(f"{name} must be non-negative, got {getattr(cell, name)}")
    seen = set()
    for u in users:
        if u.id in seen:
            raise ValueError(f"user id {u.id!r} appears twice")
        seen.add(u.id)
        if not u.noise > 0:
            raise ValueError(f"user {u.id!r}: noise must be positive, got {u.noise}")
        if not u.C > 0:
            raise ValueError(f"user {u.id!r}: C must be positive, got {u.C}")
        if not u.C < u.D:
            raise ValueError(f"user {u.id!r}: C must be smaller than D, got C={u.C} D={u.D}")


def _options(u: User, cell: Cell) -> list[tuple[int, float, float]]:
    """(x, quality, power) for the choices open to user u."""
    return [(NOT_SENT, 0.0, 0.0),
            (DIRECT, QUALITY_DIRECT, required_power(u.D, u.noise, cell)),
            (KEY, cell.alpha, required_power(u.C, u.noise, cell))]


def _grid(power: float, step: float) -> int | None:
    """Power in grid units, rounded up; None when it is infinite."""
    if not math.isfinite(power):
        return None
    return math.ceil(power / step - 1e-9)


def schedule(cell: Cell, users: list[User], power_step: float) -> Schedule:
    """Exact DP on the power grid; see the module docstring for the model.

    power_step: grid step in the same unit as P_max (> 0).
    Returns a Schedule whose decisions follow the order of ``users``.
    """
    validate(cell, users)
    if not power_step > 0:
        raise ValueError(f"power step must be positive, got {power_step}")
    budget = int(math.floor(cell.P_max / power_step + 1e-9))
    if budget > 50_000_000:
        raise ValueError(f"power grid too fine ({budget} steps): raise --power-step")
    n = len(users)
    neg = -np.inf
    best = np.full(budget + 1, neg)
    best[0] = 0.0
    choice = np.zeros((n, budget + 1), dtype=np.int8)  # option index taken at (user, used budget)
    options = [_options(u, cell) for u in users]
    for i, opts in enumerate(options):
        new = np.full(budget + 1, neg)
        for k, (_, quality, power) in enumerate(opts):
            cost = _grid(power, power_step)
            if cost is None or cost > budget:
                continue
            cand = np.full(budget + 1, neg)
            cand[cost:] = best[: budget + 1 - cost] + quality
            better = cand > new + 1e-12
            new[better] = cand[better]
            choice[i, better] = k
        best = new
    # least budget reaching the optimal quality (best[b] is exact-use, so scan all b)
    top = best.max()
    used = int(np.flatnonzero(best >= top - 1e-9)[0])
    picks = []
    for i in range(n - 1, -1, -1):
        k = int(choice[i, used])
        picks.append(k)
        used -= _grid(options[i][k][2], power_step) or 0
    picks.reverse()
    return _result(cell, users, options, picks)


def _result(cell: Cell, users: list[User], options: list, picks: list[int]) -> Schedule:
    """Decisions, total quality and total power for option index picks[i] of user i."""
    chosen = list(zip(users, options, picks, strict=True))
    decisions = [_decide(u, opts, k, cell) for u, opts, k in chosen]
    quality = sum(opts[k][1] for _, opts, k in chosen)
    return Schedule(decisions, float(quality), float(sum(d.power for d in decisions)))


def _decide(u: User, opts: list[tuple[int, float, float]], k: int, cell: Cell) -> Decision:
    x, _, power = opts[k]
    if x == DIRECT:
        return Decision(u.id, x, power, "direct: whole frame within T")
    if x == KEY:
        return Decision(u.id, x, power, "key information: crop only within T")
    key_power = opts[2][2]
    if key_power > cell.P_max:
        reason = (f"cannot meet T even alone: key information needs {key_power:.4g} "
                  f"> P_max {cell.P_max:.4g}")
    else:
        reason = "not sent: the power budget serves other users better"
    return Decision(u.id, x, 0.0, reason)



def _serve_in_order(cell: Cell, users: list[User], allowed: tuple[int, ...]) -> Schedule:
    """Serve users cheapest-direct-first, each with the first choice in ``allowed`` that
    still fits the remaining budget (the baselines the DP is compared with)."""
    validate(cell, users)
    options = [_options(u, cell) for u in users]
    order = sorted(range(len(users)), key=lambda i: options[i][1][2])
    picks = [0] * len(users)
    left = cell.P_max
    for i in order:
        for k in allowed:
            power = options[i][k][2]
            if power <= left:
                picks[i] = k
                left -= power
                break
    return _result(cell, users, options, picks)


def greedy_schedule(cell: Cell, users: list[User]) -> Schedule:
    """Greedy rule: users in order of increasing direct power; each is sent directly if
    that fits the remaining budget, else its key information if that fits, else nothing."""
    return _serve_in_order(cell, users, allowed=(1, 2))


def direct_only_schedule(cell: Cell, users: list[User]) -> Schedule:
    """Everyone direct: users in order of increasing direct power are sent directly
    while the budget lasts; no key-information option."""
    return _serve_in_order(cell, users, allowed=(1,))
