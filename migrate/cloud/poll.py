"""Polling with a deadline and backoff, for long cloud operations."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from migrate.errors import MigrateError, ProviderError

T = TypeVar("T")


def poll(
    check: Callable[[], tuple[bool, T]],
    *,
    timeout: float,
    what: str,
    where: str | None = None,
    interval: float = 2.0,
    max_interval: float = 30.0,
    describe: Callable[[T], str] = str,
    on_wait: Callable[[T, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``check`` until it returns (True, value). Retryable provider errors are waited out.

    After ``timeout`` seconds, raise a ProviderError saying what was still missing.
    """
    deadline = clock() + timeout
    delay = interval
    last: T | None = None
    last_error: MigrateError | None = None
    while True:
        try:
            ok, value = check()
            last, last_error = value, None
            if ok:
                return value
        except MigrateError as e:
            if not e.retryable:
                raise
            last_error = e
        remaining = deadline - clock()
        if remaining <= 0:
            detail = describe(last) if last is not None else (last_error.what if last_error else "no answer")
            raise ProviderError(f"timed out after {timeout:g}s waiting for {what}: {detail}", where=where,
                                hint="check the cloud console or raise the timeout, then resume", retryable=True)
        if on_wait is not None and last is not None:
            on_wait(last, remaining)
        sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)
