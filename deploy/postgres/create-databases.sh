#!/usr/bin/env bash
# Creates one PostgreSQL database and one login role per Tailor service, from the services'
# own database URLs: every TAILOR_<ROLE>__DATABASE__URL=postgres://USER:PASSWORD@HOST:PORT/DB
# in the environment yields role USER (with PASSWORD) owning database DB, which nobody else
# may connect to. So a service's credentials live in one place (its URL) and a new service
# gets its database by having its URL set.
#
# Idempotent: run on every `docker compose up` (service `databases`), so a service added
# after the first start gets its database without wiping the volume; existing roles get
# their password reset to the URL's (rotation = edit the env file, `docker compose up`).
#
# Connects as the superuser through the usual libpq variables (PGHOST, PGUSER, PGPASSWORD, or
# POSTGRES_PASSWORD as the compose file passes it).
# Passwords must be URL-safe as written (e.g. `openssl rand -hex 24`): they are not decoded.
set -euo pipefail
# In compose the superuser's password arrives as the postgres image's variable.
export PGPASSWORD=${PGPASSWORD:-${POSTGRES_PASSWORD:-}}

found=0
for var in $(compgen -e | grep -E '^TAILOR_[A-Z0-9_]+__DATABASE__URL$' | sort); do
  url=${!var}
  case $url in
    postgres://* | postgresql://*) ;;
    *) echo "$var: not a postgres:// URL, skipped"; continue ;;
  esac
  rest=${url#*://}
  creds=${rest%%@*}
  user=${creds%%:*}
  password=${creds#*:}
  db=${rest#*/}
  db=${db%%\?*}
  if [[ $creds == "$rest" || $user == "$creds" || -z $user || -z $password || -z $db || $db == "$rest" ]]; then
    echo "$var: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE" >&2
    exit 1
  fi
  # Identifiers and the password go through format() with %I/%L, never into SQL text.
  psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --dbname postgres \
    -v role="$user" -v password="$password" -v db="$db" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
-- Each service reaches only its own database.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SQL
  echo "database $db ready for role $user ($var)"
  found=$((found + 1))
done

if [[ $found -eq 0 ]]; then
  echo "no TAILOR_<ROLE>__DATABASE__URL with a postgres:// URL in the environment" >&2
  exit 1
fi
