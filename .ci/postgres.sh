#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL server for the study-store tests, then print
# the URL the tests read. Meant for a fresh Debian CI machine running as root; idempotent.
#
#   eval "$(.ci/postgres.sh)"     # exports R2C_TEST_POSTGRES_URL
#
# Everything but the final export line goes to stderr, so eval sees only the export.
set -euo pipefail

PG_USER=${R2C_PG_USER:-r2c}
PG_PASSWORD=${R2C_PG_PASSWORD:-r2c}
PG_DB=${R2C_PG_DB:-r2c_test}
PG_PORT=${R2C_PG_PORT:-5432}

log() { printf '%s\n' "$*" >&2; }

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  log "installing PostgreSQL..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
  log "creating cluster $version/main..."
  pg_createcluster "$version" main --port "$PG_PORT" >&2
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  log "starting PostgreSQL $version..."
  pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')

for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q -p $port" && break
  sleep 1
done

psql_admin() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -qAt $*"; }
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'\"")" != "1" ]; then
  psql_admin "-c \"CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD' CREATEDB\"" >&2
fi
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_database WHERE datname='$PG_DB'\"")" != "1" ]; then
  psql_admin "-c \"CREATE DATABASE $PG_DB OWNER $PG_USER\"" >&2
fi

url="postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$port/$PG_DB"
log "PostgreSQL ready: $url"
echo "export R2C_TEST_POSTGRES_URL='$url'"
