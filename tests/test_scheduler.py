import itertools
import json
import math
import random

import pytest

from stream.basestation import DIRECT, KEY, NOT_SENT, Cell, User, required_power, schedule
from stream.cli import main


def brute_force(cell: Cell, users: list[User], step: float) -> float:
    """Best total quality over all 3^N plans, powers rounded up to the same grid."""
    budget = math.floor(cell.P_max / step + 1e-9)
    opts = []
    for u in users:
        choices = [(0.0, 0)]
        for quality, bits in ((1.0, u.D), (cell.alpha, u.C)):
            p = required_power(bits, u.noise, cell)
            if math.isfinite(p):
                choices.append((quality, math.ceil(p / step - 1e-9)))
        opts.append(choices)
    best = 0.0
    for plan in itertools.product(*opts):
        if sum(c for _, c in plan) <= budget:
            best = max(best, sum(q for q, _ in plan))
    return best


def random_instance(rng: random.Random, n: int) -> Cell:
    cell = Cell(alpha=rng.uniform(0.1, 0.9), T=rng.uniform(0.5, 2), G=rng.uniform(0.5, 2),
                L=rng.uniform(0, 1), P_max=rng.uniform(5, 60))
    users = []
    for i in range(n):
        d = rng.uniform(1, 6)
        users.append(User(f"u{i}", rng.uniform(0.1, 5), d, rng.uniform(0.2, 0.9) * d))
    return cell, users


@pytest.mark.parametrize("seed", range(30))
def test_dp_matches_brute_force(seed):
    rng = random.Random(seed)
    cell, users = random_instance(rng, rng.randint(1, 10))
    step = cell.P_max / rng.choice([50, 200, 1000])
    result = schedule(cell, users, step)
    assert result.total_quality == pytest.approx(brute_force(cell, users, step))
    assert result.total_power <= cell.P_max + 1e-9
    assert sum(d.power for d in result.decisions) == pytest.approx(result.total_power)
    for d, u in zip(result.decisions, users, strict=True):
        expect = {NOT_SENT: 0.0, DIRECT: required_power(u.D, u.noise, cell),
                  KEY: required_power(u.C, u.noise, cell)}[d.x]
        assert d.power == pytest.approx(expect)


def test_required_power_inverts_the_rate_formula():
    cell = Cell(alpha=0.5, T=2.0, G=1.5, L=0.3, P_max=10)
    p = required_power(4.0, 0.7, cell)
    rate = math.log2(1 + (p * cell.G - cell.L) / 0.7)
    assert rate == pytest.approx(4.0 / cell.T)


def test_user_that_cannot_meet_t_alone_is_not_sent_with_reason():
    cell = Cell(alpha=0.5, T=1.0, G=1.0, L=0.0, P_max=5.0)
    users = [User("far", noise=100.0, D=4.0, C=2.0), User("near", noise=0.1, D=2.0, C=1.0)]
    result = schedule(cell, users, 0.01)
    far, near = result.decisions
    assert far.x == NOT_SENT and "cannot meet T even alone" in far.reason
    assert near.x == DIRECT


def test_tight_budget_prefers_key_information_for_more_users():
    cell = Cell(alpha=0.7, T=1.0, G=1.0, L=0.0, P_max=3.0)
    users = [User(f"u{i}", 1.0, D=2.0, C=0.5) for i in range(4)]  # direct 3.0, key ~0.414
    result = schedule(cell, users, 0.001)
    assert [d.x for d in result.decisions] == [KEY] * 4
    assert result.total_quality == pytest.approx(4 * 0.7)


def _write(tmp_path, doc) -> str:
    path = tmp_path / "users.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


GOOD = {"alpha": 0.6, "T": 1, "G": 1, "L": 0.1, "P_max": 20,
        "users": [{"id": "a", "noise": 0.5, "D": 4, "C": 2},
                  {"id": "b", "noise": 2, "D": 3, "C": 1}]}


def test_cli_writes_the_decisions(tmp_path):
    out = tmp_path / "out.json"
    args = ["schedule", _write(tmp_path, GOOD), "--power-step", "0.01", "--json", str(out)]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert set(doc) >= {"total_quality", "total_power", "decisions"}
    assert [d["id"] for d in doc["decisions"]] == ["a", "b"]
    assert all(set(d) == {"id", "x", "power", "reason"} for d in doc["decisions"])


@pytest.mark.parametrize("doc, message", [
    ("{not json", "not valid JSON"),
    ({**GOOD, "alpha": 1.5}, "alpha must lie in (0, 1)"),
    ({k: v for k, v in GOOD.items() if k != "T"}, "missing key 'T'"),
    ({**GOOD, "users": [{"id": "a", "noise": 1, "D": 2, "C": 2}]}, "C must be smaller than D"),
    ({**GOOD, "users": [{"id": "a", "noise": -1, "D": 2, "C": 1}]}, "noise must be positive"),
    ({**GOOD, "users": [{"id": "a", "noise": 1, "D": 2}]}, "missing key 'C'"),
    ({**GOOD, "P_max": -3}, "P_max must be non-negative"),
    ({**GOOD, "G": "big"}, "'G' must be a finite number"),
])
def test_cli_refuses_bad_input_with_one_line_and_exit_2(tmp_path, capsys, doc, message):
    assert main(["schedule", _write(tmp_path, doc)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_missing_file(tmp_path, capsys):
    assert main(["schedule", str(tmp_path / "absent.json")]) == 2
    assert "absent.json" in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(10))
def test_dp_is_never_worse_than_the_baselines(seed):
    from stream.basestation import direct_only_schedule, greedy_schedule

    cell, users = random_instance(random.Random(100 + seed), 8)
    dp = schedule(cell, users, cell.P_max / 2000)
    greedy = greedy_schedule(cell, users)
    direct = direct_only_schedule(cell, users)
    assert dp.total_quality >= greedy.total_quality - 1e-9
    assert greedy.total_quality >= direct.total_quality - 1e-9
    for plan in (greedy, direct):
        assert plan.total_power <= cell.P_max + 1e-9
    assert all(d.x in (DIRECT, NOT_SENT) for d in direct.decisions)
