"""The emulator's token buckets on a fake clock: the one limiter behind Coinbase's bucket,
BitMEX's continuously refilled counter and Kraken's decaying call counter."""

from __future__ import annotations

from dccd_cli.emulator.limiter import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_refill_per_key() -> None:
    clock = Clock()
    buckets = TokenBuckets(3, 2.0, clock=clock)  # 3 saved up, 2 more a second
    assert [buckets.take("a") for _ in range(4)] == [(True, 2.0), (True, 1.0), (True, 0.0),
                                                   (False, 0.0)]
    assert buckets.take("b").admitted  # every key has its own bucket
    clock.t += 0.5
    assert buckets.take("a") == (True, 0.0)
    clock.t += 60
    assert buckets.take("a") == (True, 2.0)  # refilled no further than the capacity
    buckets.reset()
    assert buckets.take("a") == (True, 2.0)


def test_penalized_refusals_go_into_debt() -> None:
    clock = Clock()
    kraken = TokenBuckets(2, 1.0, penalize=True, clock=clock)  # counter = 2 - tokens
    assert [kraken.take("k").admitted for _ in range(4)] == [True, True, False, False]
    # The counter stands at 4 and decays to 1.5: one more call is still refused, and counts.
    clock.t += 2.5
    assert kraken.take("k") == (False, -0.5)
    clock.t += 1.5
    assert kraken.take("k") == (True, 0.0)
    lenient = TokenBuckets(2, 1.0, clock=clock)
    assert [lenient.take("k").admitted for _ in range(4)] == [True, True, False, False]
    clock.t += 1
    assert lenient.take("k") == (True, 0.0)  # refusals cost nothing
