"""Fixtures of the agent executors' tests."""

from __future__ import annotations

import pytest

from tests.helpers.executors import WORKER_SECRETS


@pytest.fixture
def worker_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process's environment as a worker's: ``WORKER_SECRETS``, and a locale setting
    (``LC_TIME``) that agents may see.
    """
    for name, value in WORKER_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_TIME", "C.UTF-8")
    return WORKER_SECRETS
