#!/usr/bin/env bash
# molremote ssh launcher: job 0620_fatgcn-ssh-20261101T120000-abcd, experiment 0620_fatgcn, folds 0 1.
# Rendered by molremote (kernels_templates/ssh_launch.sh); lives in <root>/jobs/<job_id>/.
#   bash launch.sh start    unpack the code, start `run` detached (setsid nohup): survives the connection
#   bash launch.sh run      venv + train each fold in turn; writes exit_code when done
#   bash launch.sh status   one line: "state pending|running|exit <code>|dead" [+ "cancelled"], then the log tail
#   bash launch.sh cancel   SIGTERM the trainer (it checkpoints), SIGKILL the group after 30 s
set -uo pipefail
JOB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$JOB_DIR/../.." && pwd)
FOLDS=(0 1)
cd "$JOB_DIR"

# ---- molremote remote helpers (kernels_templates/remote_common.sh, shared by the ssh and slurm scripts)
BUNDLE_SHA=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
BUNDLE_FILE=$ROOT/bundles/bundle-${BUNDLE_SHA:0:16}.tar.gz
CODE=$ROOT/code/${BUNDLE_SHA:0:16}
DEPS_HASH=1ebc3ec638a7d487
PYTHON=python3
VENV=''

log() { echo "[molremote $(date +%H:%M:%S)] $*"; }

# Unpack the code once per bundle (shared by all jobs of that bundle): checked, into a temp dir, renamed.
unpack_code() {
  [ -f "$CODE/.molremote/bundle.json" ] && return 0
  mkdir -p "$ROOT/code"
  echo "$BUNDLE_SHA  $BUNDLE_FILE" | sha256sum -c --quiet - || { log "bundle $BUNDLE_FILE is corrupt or missing"; return 1; }
  local tmp="$CODE.tmp.$(hostname).$$"
  rm -rf "$tmp" && mkdir -p "$tmp" && tar -xzf "$BUNDLE_FILE" -C "$tmp" || { rm -rf "$tmp"; return 1; }
  mv -T "$tmp" "$CODE" 2>/dev/null || rm -rf "$tmp"   # another job unpacked it first: same content
}

# Sets PY. A given venv is used as is; otherwise one venv per dependency set, created once (under a lock),
# so a second launch with the same pyproject dependencies installs nothing.
setup_venv() {
  if [ -n "$VENV" ]; then
    PY=$VENV/bin/python
    [ -x "$PY" ] || { log "venv $VENV has no bin/python"; return 1; }
    log "using venv $VENV"
    return 0
  fi
  local v=$ROOT/venvs/$DEPS_HASH
  PY=$v/bin/python
  mkdir -p "$ROOT/venvs"
  exec 9>"$v.lock"
  flock 9
  if [ -f "$v/.ready" ]; then
    log "reusing venv $v"
  else
    log "creating venv $v (python: $PYTHON)"
    rm -rf "$v"
    if ! { "$PYTHON" -m venv "$v" && "$PY" -m pip install -q --disable-pip-version-check \
           -r "$JOB_DIR/requirements.txt"; }; then
      flock -u 9; log "installing the dependencies failed"; return 1
    fi
    touch "$v/.ready"
  fi
  flock -u 9
}

# Environment of the trainer: run folders in the job folder, the bundle's identity for the manifest, and
# secrets (HF_TOKEN, WANDB_API_KEY, ...) from the remote machine's own ~/.config/molremote/env, never the bundle.
train_env() {
  export JOB_DIR CODE PY
  export PYTHONPATH="$CODE${PYTHONPATH:+:$PYTHONPATH}"
  export MOLREMOTE_PROJECT="$JOB_DIR" MOLREMOTE_RUNS="$JOB_DIR/runs"
  export MOLREMOTE_BUNDLE_INFO="$CODE/.molremote/bundle.json" MOLREMOTE_BUNDLE_SHA256="$BUNDLE_SHA"
  export MOLREMOTE_JOB_ID=0620_fatgcn-ssh-20261101T120000-abcd MOLREMOTE_BACKEND=ssh PYTHONUNBUFFERED=1
  if [ -f "$HOME/.config/molremote/env" ]; then set -a; . "$HOME/.config/molremote/env"; set +a; fi
}

# `remote --resume JOB`: before a fold trains, its run folder in that earlier job (same remote root) moves into
# this job, so the trainer resumes from the run's last checkpoint. Refused while a trainer holds the run's lock.
RESUME_JOB=''
adopt_run() {
  [ -n "$RESUME_JOB" ] || return 0
  local key=0620_fatgcn/fold"$1"-0123456789ab
  local from="$ROOT/jobs/$RESUME_JOB/runs/$key" to="$JOB_DIR/runs/$key"
  [ -d "$from" ] && [ ! -e "$to" ] || return 0
  mkdir -p "$(dirname "$to")"
  if ! flock -n "$from/.lock" mv -T "$from" "$to"; then
    log "fold $1: could not take the run folder $from (a trainer still holds it?)"; return 1
  fi
  log "fold $1: resuming the run of job $RESUME_JOB (run folder moved from $from)"
}

# Wait for the trainer; a trapped signal interrupts `wait`, so wait again until it really exits.
wait_child() {
  local rc prev=
  while :; do
    GOT_SIGNAL=0
    wait "$CHILD"; rc=$?
    if [ "$rc" = 127 ] && [ -n "$prev" ]; then return "$prev"; fi
    [ "$GOT_SIGNAL" = 1 ] || return "$rc"
    prev=$rc
  done
}
# ---- end of remote helpers

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
  log "job 0620_fatgcn-ssh-20261101T120000-abcd on $(hostname): experiment 0620_fatgcn, folds ${FOLDS[*]}"
  setup_venv || finish 1
  train_env
  local rc=0
  for FOLD in "${FOLDS[@]}"; do
    export FOLD
    log "fold $FOLD: start"
    adopt_run "$FOLD" || { rc=1; break; }
    "$PY" -c 'import sys; from molremote.cli import main; sys.argv[0] = '"'"'molremote'"'"'; main()' train --experiment-json "$JOB_DIR/experiment.json" --fold "$FOLD" --no-progress --max-time 11h30m &
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
  tail -n 30 log.txt 2>/dev/null || true
}

cmd_cancel() {
  touch cancelled
  running || { echo "not running"; return 0; }
  local pid; pid=$(cat pid)
  kill -TERM "$pid"
  for _ in $(seq $(( 30 * 10 ))); do alive "$pid" || break; sleep 0.1; done
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
