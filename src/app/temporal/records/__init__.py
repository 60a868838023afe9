"""Crisis records: one document per crisis, kept in files (the default) or in PostgreSQL.

``document`` holds the record's contents and the guards against stale writers, ``store`` the
write operations every store shares, ``files`` and ``postgres`` the two stores, and ``config``
picks the one this machine is configured for.
"""

from app.temporal.records.config import RECORD_STORE_ENV, configured_record_store
from app.temporal.records.document import CrisisRun, format_timestamp
from app.temporal.records.files import DEFAULT_RECORD_DIR, RECORD_DIR_ENV, FileRecordStore
from app.temporal.records.postgres import PostgresRecordStore, RecordStoreConfigError
from app.temporal.records.store import RecordStore, StoreHealth

__all__ = [
    "DEFAULT_RECORD_DIR",
    "RECORD_DIR_ENV",
    "RECORD_STORE_ENV",
    "CrisisRun",
    "FileRecordStore",
    "PostgresRecordStore",
    "RecordStore",
    "RecordStoreConfigError",
    "StoreHealth",
    "configured_record_store",
    "format_timestamp",
]
