#!/usr/bin/env bash
# What `make dev`, `make test` and CI need on a fresh Debian machine, made
# ready and said in one line each (on stderr):
#
#   tools/ensure.sh postgres   PostgreSQL on 127.0.0.1:5432 answering, or
#                              else started: the installed cluster; one
#                              installed (apt-get) when run as root; or,
#                              for a user who may not, a private cluster of
#                              their own (~/.cache/rebook/postgres, port
#                              55432). Prints the `export` lines that point
#                              Rebook and its tests at it, for eval.
#   tools/ensure.sh chromium   Chromium for the browser test, installed
#                              when missing and run as root.
#   tools/ensure.sh compose    Debian's docker-compose, for the compose
#                              test's own `config` check (CI).
#
# A DATABASE_URL or REBOOK_TEST_DATABASE_URL already set is used as it is.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { echo "$*" >&2; }
root() { [ "$(id -u)" = 0 ]; }
answers() { # host port
  if command -v pg_isready >/dev/null 2>&1; then pg_isready -h "$1" -p "$2" -q 2>/dev/null; else (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; fi
}
wait_for() {
  for _ in $(seq 1 60); do answers "$1" "$2" && return 0; sleep 1; done
  return 1
}
bindir() {
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}${REBOOK_TEST_DATABASE_URL:-}" ]; then
    say "postgres: using the database the environment names"
    return
  fi
  if answers 127.0.0.1 5432; then
    say "postgres: using the server on 127.0.0.1:5432"
    return
  fi
  if root; then
    local how="started the installed PostgreSQL"
    if ! ls -d /etc/postgresql/*/main >/dev/null 2>&1; then
      apt-get update -qq >&2
      apt-get install -y -qq postgresql >/dev/null
      # Rebook and its tests connect as postgres over TCP without a
      # password, as on the project's machines.
      for hba in /etc/postgresql/*/main/pg_hba.conf; do
        printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' > "$hba"
      done
      how="installed and started PostgreSQL"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start >&2 || true
    wait_for 127.0.0.1 5432 || { say "postgres: it did not start (see /var/log/postgresql)"; exit 1; }
    say "postgres: $how on 127.0.0.1:5432"
    return
  fi
  local bin
  bin=$(bindir)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    say "postgres: none answers on 127.0.0.1:5432, none is installed, and only root may install it: run 'sudo apt-get install postgresql', or set DATABASE_URL (and REBOOK_TEST_DATABASE_URL for the tests) to a server of yours"
    exit 1
  fi
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/rebook/postgres" port=55432 how="started your private PostgreSQL"
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
    how="made and started a private PostgreSQL"
  fi
  if ! answers 127.0.0.1 "$port"; then
    "$bin/pg_ctl" -D "$dir" -l "$dir/postgres.log" -o "-p $port -h 127.0.0.1 -k $dir -c max_connections=200" start >/dev/null
    wait_for 127.0.0.1 "$port" || { say "postgres: it did not start (see $dir/postgres.log)"; exit 1; }
  else
    how="using your private PostgreSQL"
  fi
  say "postgres: $how in $dir on 127.0.0.1:$port"
  echo "export REBOOK_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$port/rebook?sslmode=disable"
}

ensure_chromium() {
  for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
      say "chromium: using $(command -v "$name")"
      return
    fi
  done
  if ! root; then
    say "chromium: not installed, and only root may install it: run 'sudo apt-get install chromium' (the browser test needs it)"
    exit 1
  fi
  apt-get update -qq >&2
  apt-get install -y -qq chromium >/dev/null
  say "chromium: installed Debian's chromium for the browser test"
}

ensure_compose() {
  if command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; then
    say "compose: using $(command -v docker-compose || echo docker compose)"
    return
  fi
  if ! root; then
    say "compose: not installed; the compose file is checked by its parse alone (sudo apt-get install docker-compose adds the tool's own check)"
    return
  fi
  apt-get update -qq >&2
  apt-get install -y -qq docker-compose >/dev/null
  say "compose: installed Debian's docker-compose to validate docker-compose.yml (no container engine is needed for that)"
}

case "${1:-}" in
  postgres) ensure_postgres ;;
  chromium) ensure_chromium ;;
  compose) ensure_compose ;;
  *) say "usage: tools/ensure.sh postgres|chromium|compose"; exit 2 ;;
esac
