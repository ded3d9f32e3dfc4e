from __future__ import annotations

import pytest

from ocigate.limiter.gcra import RateLimit, step


def _run(limit: RateLimit, arrivals: list[float]) -> list[bool]:
    tat, allowed = 0.0, []
    for now in arrivals:
        admitted, tat, _ = step(tat, now, limit)
        allowed.append(admitted == 1)
    return allowed


def test_a_burst_passes_back_to_back_then_one_per_interval() -> None:
    limit = RateLimit(rps=10, burst=5)
    assert _run(limit, [100.0] * 7) == [True] * 5 + [False] * 2
    tat = 0.0
    for _ in range(5):
        _, tat, _ = step(tat, 100.0, limit)
    assert step(tat, 100.09, limit)[0] == 0
    assert step(tat, 100.1, limit)[0] == 1


@pytest.mark.parametrize(("rps", "burst"), [(60, 60), (60, 1), (7.5, 3), (1000, 10)])
def test_admitted_over_a_window_stays_within_rate_times_window_plus_burst(rps: float, burst: int) -> None:
    limit = RateLimit(rps, burst)
    window, per_second = 10.0, 5000
    arrivals = [1000.0 + i / per_second for i in range(int(window * per_second))]
    admitted = sum(_run(limit, arrivals))
    bound = rps * window + burst
    assert 0.99 * bound - 1 <= admitted <= bound  # arrivals are discrete: a little is lost


def test_a_batch_admits_what_fits_and_reports_the_backlog() -> None:
    limit = RateLimit(rps=2, burst=3)
    admitted, tat, backlog = step(0.0, 50.0, limit, cost=5)
    assert admitted == 3
    assert tat == pytest.approx(51.5)
    assert backlog == pytest.approx(1.5)


def test_decisions_carry_the_headers_clients_back_off_on() -> None:
    limit = RateLimit(rps=60, burst=60)
    fresh = limit.decide(True, limit.interval)
    assert fresh.remaining == 59
    headers = fresh.headers()
    assert headers["RateLimit-Limit"] == "60"
    assert headers["RateLimit-Remaining"] == "59"
    assert headers["RateLimit-Reset"] == "1"
    assert "Retry-After" not in headers
    refused = limit.decide(False, limit.tolerance + 0.2)
    assert refused.headers()["Retry-After"] == "1"  # 0.2 s rounds up to a whole second
    slow = RateLimit(rps=0.1, burst=1).decide(False, 25.0)
    assert slow.headers()["Retry-After"] == "25"
    assert slow.headers()["RateLimit-Limit"] == "0.1"
