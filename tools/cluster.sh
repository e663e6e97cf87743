#!/usr/bin/env bash
# A production-shaped Temporal on this machine: the Temporal server pinned
# in tools/temporal-server (go.temporal.io/server), on PostgreSQL (its own
# databases for persistence and visibility, the schema set up and upgraded
# by the server's own SQL tool), with the frontend, history, matching and
# internal worker services each a process of its own, and the Web UI
# (ui-server, pinned with the CLI in tools/go.mod) pointed at it.
#
#   tools/cluster.sh up       start it (idempotent); prints where things are
#   tools/cluster.sh down     stop it (the databases stay)
#   tools/cluster.sh restart SERVICE   kill and start one service
#   tools/cluster.sh status   which services run
#
# State, logs and pids are in .rebook-cluster/. The frontend listens on
# 127.0.0.1:7233 and the Web UI on :8233, as the dev server's do, so run one
# of `make dev` and `make cluster` at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state="$root/.rebook-cluster"
mkdir -p "$state"
export TEMPORAL_FRONTEND_PORT="${TEMPORAL_FRONTEND_PORT:-7233}"
ui_port="${TEMPORAL_UI_PORT:-8233}"
services=(history matching frontend worker)

say() { echo "cluster: $*" >&2; }
alive() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

binaries() {
  say "building or locating the pinned Temporal server and its SQL tool (first run: several minutes)"
  server=$(go tool -modfile=tools/temporal-server/go.mod -n server)
  sqltool=$(go tool -modfile=tools/temporal-server/go.mod -n sql)
  schema="$(go list -modfile=tools/temporal-server/go.mod -m -f '{{.Dir}}' go.temporal.io/server)/schema/postgresql/v12"
  uidir=$(go list -modfile=tools/go.mod -m -f '{{.Dir}}' github.com/temporalio/ui-server/v2)
  ui=$(go tool -modfile=tools/go.mod -n server)
}

schema_up() {
  go run ./starter temporal-schema --sql-tool "$sqltool" --schema "$schema" >>"$state/schema.log" 2>&1 || {
    say "the schema step failed; see $state/schema.log"
    exit 1
  }
  say "schema up to date ($(basename "$(ls -d "$schema"/temporal/versioned/v* | sort -V | tail -n1)") persistence, $(basename "$(ls -d "$schema"/visibility/versioned/v* | sort -V | tail -n1)") visibility)"
}

start_service() {
  local s=$1
  alive "$s" && return
  "$server" --config-file "$root/deploy/temporal/cluster.yaml" --allow-no-auth start --service "$s" >>"$state/$s.log" 2>&1 &
  echo $! >"$state/$s.pid"
}

wait_frontend() {
  for _ in $(seq 1 120); do
    if go tool -modfile=tools/go.mod temporal operator cluster health --address "127.0.0.1:$TEMPORAL_FRONTEND_PORT" >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  say "the frontend did not become healthy; see $state/frontend.log"
  exit 1
}

up() {
  pg=$(tools/ensure.sh postgres)
  eval "$pg"
  binaries
  schema_up
  for s in "${services[@]}"; do start_service "$s"; done
  wait_frontend
  if ! go tool -modfile=tools/go.mod temporal operator namespace describe --namespace default --address "127.0.0.1:$TEMPORAL_FRONTEND_PORT" >/dev/null 2>&1; then
    for _ in $(seq 1 30); do
      go tool -modfile=tools/go.mod temporal operator namespace create --namespace default --retention 720h \
        --address "127.0.0.1:$TEMPORAL_FRONTEND_PORT" >/dev/null 2>&1 && break
      sleep 1
    done
  fi
  if ! alive ui; then
    TEMPORAL_ADDRESS="127.0.0.1:$TEMPORAL_FRONTEND_PORT" TEMPORAL_UI_PORT="$ui_port" \
      TEMPORAL_CODEC_ENDPOINT="${TEMPORAL_CODEC_ENDPOINT:-http://127.0.0.1:8080/codec}" TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true \
      TEMPORAL_CORS_ORIGINS="http://127.0.0.1:$ui_port,http://localhost:$ui_port" \
      "$ui" --root "$uidir" --env docker start >>"$state/ui.log" 2>&1 &
    echo $! >"$state/ui.pid"
  fi
  say "up: frontend 127.0.0.1:$TEMPORAL_FRONTEND_PORT (history, matching, worker each its own process), Web UI http://127.0.0.1:$ui_port, namespace default; logs in $state"
}

down() {
  for s in ui "${services[@]}"; do
    if alive "$s"; then kill "$(cat "$state/$s.pid")" 2>/dev/null || true; fi
  done
  for s in ui "${services[@]}"; do
    for _ in $(seq 1 30); do alive "$s" || break; sleep 1; done
    rm -f "$state/$s.pid"
  done
  say "down"
}

restart() {
  local s=$1
  binaries >/dev/null 2>&1
  if alive "$s"; then kill -9 "$(cat "$state/$s.pid")"; fi
  for _ in $(seq 1 30); do alive "$s" || break; sleep 1; done
  start_service "$s"
  say "restarted $s"
}

status() {
  for s in "${services[@]}" ui; do
    if alive "$s"; then echo "$s: running (pid $(cat "$state/$s.pid"))"; else echo "$s: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart) restart "${2:?restart which service?}" ;;
  status) status ;;
  *) echo "usage: tools/cluster.sh up|down|restart SERVICE|status" >&2; exit 2 ;;
esac
