#!/usr/bin/env bash
# tests/engines/ray.sh - a real single-node Ray cluster for the executor conformance suite.
#
#   tests/engines/ray.sh start    ray start --head (2 CPUs, 2 fake GPUs), waits until it answers
#   tests/engines/ray.sh stop     SIGTERM to the PID that start recorded (then SIGKILL), and removes
#                                 /tmp/ray/ray_current_cluster when it names this head: a stale one
#                                 makes a later plain ray.init() try to join a dead cluster
#   tests/engines/ray.sh status   the head's PID and address
#
# Environment: RAY_PY (python with ray; default: the first python3 on PATH), RAY_PORT (6390),
# RAY_CPUS (2), RAY_GPUS (2: fake GPUs, enough for Ray to set CUDA_VISIBLE_DEVICES per task).
# Token authentication (Ray 2.60's RAY_AUTH_MODE=token) is on: start generates ~/.ray/auth_token if
# missing; a driver on this machine with RAY_AUTH_MODE unset finds that file and uses it (elsewhere:
# copy the file, or set RAY_AUTH_TOKEN). Attach with ray.init(address="auto") or executor.address=auto.
set -euo pipefail

RAY_PY=${RAY_PY:-python3}
RAY_PORT=${RAY_PORT:-6390}
RAY_CPUS=${RAY_CPUS:-2}
RAY_GPUS=${RAY_GPUS:-2}
STATE_DIR=${RAY_STATE_DIR:-/tmp/ragline-ray}
PID_FILE=$STATE_DIR/head.pid
LOG_FILE=$STATE_DIR/head.log
CURRENT=/tmp/ray/ray_current_cluster
export RAY_AUTH_MODE=token

log() { printf '[ray.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ray_bin() { "$RAY_PY" -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "ray"))'; }

alive() {  # prints the recorded pid if that process still runs `ray start`
  [ -s "$PID_FILE" ] || return 1
  local pid; pid=$(tr -dc 0-9 < "$PID_FILE")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'ray start' \
    || return 1
  echo "$pid"
}

answers() {
  "$RAY_PY" - "$RAY_PORT" <<'EOF' >/dev/null 2>&1
import sys, ray
ray.init(address=f"127.0.0.1:{sys.argv[1]}", logging_level="ERROR", log_to_driver=False)
assert ray.cluster_resources().get("CPU", 0) > 0
ray.shutdown()
EOF
}

do_start() {
  local pid ray
  if pid=$(alive); then log "ray head already running (pid $pid)"; return 0; fi
  ray=$(ray_bin); [ -x "$ray" ] || die "no ray in $RAY_PY's environment (pip install ray==2.60.0)"
  mkdir -p "$STATE_DIR"
  local t0=$SECONDS
  "$ray" get-auth-token --generate >/dev/null
  setsid "$ray" start --head --block --port="$RAY_PORT" --node-ip-address=127.0.0.1 \
    --num-cpus="$RAY_CPUS" --num-gpus="$RAY_GPUS" --include-dashboard=false --disable-usage-stats \
    </dev/null >"$LOG_FILE" 2>&1 &
  echo $! > "$PID_FILE"
  for _ in $(seq 120); do
    grep -q 'Ray runtime started' "$LOG_FILE" 2>/dev/null && break
    alive >/dev/null || die "ray start exited: $(tail -5 "$LOG_FILE")"
    sleep 0.25
  done
  answers || die "ray head does not answer on port $RAY_PORT; see $LOG_FILE"
  log "ray head started (pid $(cat "$PID_FILE"), port $RAY_PORT, $((SECONDS - t0))s)"
}

do_stop() {
  local pid
  if pid=$(alive); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then log "pid $pid ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" || true; fi
    log "stopped ray head (pid $pid)"
  else
    log "ray head not running"
  fi
  rm -f "$PID_FILE"
  if [ -f "$CURRENT" ] && grep -q ":$RAY_PORT\$" "$CURRENT"; then rm -f "$CURRENT"; fi
}

do_status() {
  local pid
  if pid=$(alive); then echo "ray head: running (pid $pid, port $RAY_PORT)"; else echo "ray head: stopped"; fi
}

case "${1:-}" in
  start)  do_start ;;
  stop)   do_stop ;;
  status) do_status ;;
  *) echo "usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
