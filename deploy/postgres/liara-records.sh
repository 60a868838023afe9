#!/bin/bash
# Run once by the postgres image when it creates its data volume (/docker-entrypoint-initdb.d):
# the crisis record database and its owner, apart from Temporal's own. `liara setup` (the
# liara-setup service) then creates the record tables in it.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v user="$LIARA_RECORDS_USER" -v password="$LIARA_RECORDS_PASSWORD" -v database="$LIARA_RECORDS_DB" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"user";
SQL
