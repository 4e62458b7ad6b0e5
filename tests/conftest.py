"""Suite-wide hygiene."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fresh_urllib_opener() -> Iterator[None]:
    # urlopen builds its global opener once, with the proxies in the environment at that moment. Sandbox
    # tests set HTTP_PROXY for a while; drop the cached opener so each test sees its own environment.
    urllib.request.install_opener(None)  # type: ignore[arg-type]
    yield
    urllib.request.install_opener(None)  # type: ignore[arg-type]
