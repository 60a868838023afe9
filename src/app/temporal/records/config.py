"""Which record store this machine uses: ``LIARA_RECORD_STORE``, else ``record_store`` in
``liara.toml``, else files under ``LIARA_CRISIS_DIR`` (``data/crises``), as before there was a choice.

Workers, ``liara record``, ``liara setup`` and ``liara doctor`` all pick it here, so they agree.
A setting that cannot be used raises a one-sentence ``LiaraError`` before anything connects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from app.temporal.config import load_config
from app.temporal.records.files import FileRecordStore
from app.temporal.records.postgres import PostgresRecordStore
from app.temporal.records.store import RecordStore

RECORD_STORE_ENV = "LIARA_RECORD_STORE"


def configured_record_store(environ: Mapping[str, str] = os.environ) -> RecordStore:
    """The configured store, not opened yet (use it as an async context manager)."""
    url, source = environ.get(RECORD_STORE_ENV), RECORD_STORE_ENV
    if not url:  # the environment wins: the file is not even read
        config = load_config(environ=environ)
        url, source = config.record_store, f"{config.where}: record_store"
    if not url:
        return FileRecordStore.from_environment(environ)
    return PostgresRecordStore(url, source=source)
