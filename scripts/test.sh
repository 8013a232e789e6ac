#!/usr/bin/env bash
# make test: every suite, in an order that lets a fresh machine finish soonest, each one's time printed.
# The lab's two Debian trees (make lab-base: debootstrap, mostly waiting on downloads) are built in
# the background while the suites that need no lab run; `make lab` waits for them. Nothing here reuses
# what an earlier run left outside the clone: each suite prepares what it needs (make setup first).
set -euo pipefail
cd "$(dirname "$0")/.."
LOG=build/lab-base.log
started_all=$(date +%s)

run_suite() {
  local started
  started=$(date +%s)
  make --no-print-directory "$1"
  echo "== make $1: $(( $(date +%s) - started )) s"
}

run_suite setup
mkdir -p build
base_pid=
stop_base() {
  if [ -n "$base_pid" ] && kill -0 "$base_pid" 2>/dev/null; then
    echo "make test: stopping the lab-base build (a suite failed)"
    kill -TERM -- "-$base_pid" 2>/dev/null || kill -TERM "$base_pid" 2>/dev/null || true
    wait "$base_pid" 2>/dev/null || true
  fi
}
trap stop_base EXIT
base_started=$(date +%s)
# (set -m: its own process group, so a failure elsewhere stops all of it)
set -m
make --no-print-directory lab-base >"$LOG" 2>&1 &
base_pid=$!
set +m
echo "== make lab-base: started in the background (log: $LOG)"

for suite in unit ansible-test-units sanity docs build-check ecosystem lint integration ansible-test-integration; do
  run_suite "$suite"
done

waited=$(date +%s)
if ! wait "$base_pid"; then
  base_pid=
  cat "$LOG"
  echo "== make lab-base: FAILED"
  exit 1
fi
base_pid=
cat "$LOG"
echo "== make lab-base: $(( $(date +%s) - base_started )) s in the background (waited $(( $(date +%s) - waited )) s for it)"
run_suite lab
echo "== make test: $(( $(date +%s) - started_all )) s"
echo "make test: all suites passed"
