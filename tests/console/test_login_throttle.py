"""The console's login throttle on its own: backoff doubles, success clears, memory is bounded."""

from __future__ import annotations

from bot.console.auth import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_per_failure_up_to_an_hour() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(LoginThrottle.ACCOUNT_FREE - 1):
        throttle.failed("wang", "10.0.0.1")
    assert throttle.locked_for("wang", "10.0.0.2") == 0
    waits = []
    for _ in range(10):
        throttle.failed("Wang ", "10.0.0.1")  # the same account, however it is typed
        waits.append(throttle.locked_for("wang", "10.0.0.2"))
    assert waits[:4] == [30.0, 60.0, 120.0, 240.0]
    assert waits[-1] == LoginThrottle.MAX_LOCK
    clock.now += LoginThrottle.MAX_LOCK
    assert throttle.locked_for("wang", "10.0.0.2") == 0


def test_success_clears_the_account_not_the_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for i in range(LoginThrottle.ADDRESS_FREE - 1):
        throttle.failed("li" if i < 4 else f"user{i}", "10.0.0.9")
    throttle.succeeded("li", "10.0.0.9")
    throttle.failed("li", "10.0.0.9")
    assert throttle.locked_for("li", "10.0.0.1") == 0  # the account starts again
    assert throttle.locked_for("zhang", "10.0.0.9") > 0  # the address does not


def test_a_spray_of_names_does_not_grow_memory_without_bound() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for i in range(LoginThrottle.MAX_RECORDS + 10):
        clock.now = float(i)
        throttle.failed(f"name{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(throttle) <= LoginThrottle.MAX_RECORDS + 2
