#!/usr/bin/env bash
# molremote ssh launcher: job @{job_id}, experiment @{experiment}, folds @{folds}.
# Rendered by molremote (kernels_templates/ssh_launch.sh); lives in <root>/jobs/<job_id>/.
#   bash launch.sh start    unpack the code, start `run` detached (setsid nohup): survives the connection
#   bash launch.sh run      venv + train each fold in turn; writes exit_code when done
#   bash launch.sh status   one line: "state pending|running|exit <code>|dead" [+ "cancelled"], then the log tail
#   bash launch.sh cancel   SIGTERM the trainer (it checkpoints), SIGKILL the group after @{kill_wait_s} s
set -uo pipefail
JOB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$JOB_DIR/../.." && pwd)
FOLDS=(@{folds})
cd "$JOB_DIR"

@{common}

alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $st != Z* ]]; }
running() { [ -s pid ] && alive "$(cat pid)"; }
finish() { echo "$1" > exit_code.tmp && mv exit_code.tmp exit_code; exit "$1"; }

cmd_start() {
  if running; then echo "already running (pid $(cat pid))"; return 0; fi
  unpack_code || exit 1
  rm -f exit_code cancelled
  setsid nohup bash "$JOB_DIR/launch.sh" run >> "$JOB_DIR/log.txt" 2>&1 < /dev/null &
  echo $! > pid
  echo "started pid $!"
}

cmd_run() {
  echo $$ > pid
  STOP=0
  trap 'GOT_SIGNAL=1; STOP=1; [ -n "${CHILD:-}" ] && kill -TERM "$CHILD" 2>/dev/null' TERM INT
  trap 'GOT_SIGNAL=1; [ -n "${CHILD:-}" ] && kill -USR1 "$CHILD" 2>/dev/null' USR1
  log "job @{job_id} on $(hostname): experiment @{experiment}, folds ${FOLDS[*]}"
  setup_venv || finish 1
  train_env
  local rc=0
  for FOLD in "${FOLDS[@]}"; do
    export FOLD
    log "fold $FOLD: start"
    adopt_run "$FOLD" || { rc=1; break; }
    @{train_cmd} &
    CHILD=$!
    wait_child; rc=$?
    CHILD=
    log "fold $FOLD: exit $rc"
    [ "$rc" = 0 ] && [ "$STOP" = 0 ] || break
  done
  finish "$rc"
}

cmd_status() {
  if [ -f exit_code ]; then echo "state exit $(cat exit_code)"
  elif running; then echo "state running"
  elif [ -s pid ]; then echo "state dead"
  else echo "state pending"; fi
  [ -f cancelled ] && echo "cancelled"
  echo "---"
  tail -n @{tail_lines} log.txt 2>/dev/null || true
}

cmd_cancel() {
  touch cancelled
  running || { echo "not running"; return 0; }
  local pid; pid=$(cat pid)
  kill -TERM "$pid"
  for _ in $(seq $(( @{kill_wait_s} * 10 ))); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL -- "-$pid" 2>/dev/null
  [ -f exit_code ] || echo 143 > exit_code
  echo "cancelled pid $pid"
}

case "${1:-}" in
  start) cmd_start ;;
  run) cmd_run ;;
  status) cmd_status ;;
  cancel) cmd_cancel ;;
  *) echo "usage: launch.sh start|run|status|cancel" >&2; exit 2 ;;
esac
