"""One temporary Prefect API (``prefect_test_harness``) for the flow tests that run the engine in-process."""

from __future__ import annotations

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session")
def prefect_backend():
    with prefect_test_harness(server_startup_timeout=120):
        yield
