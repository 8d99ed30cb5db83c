# ---- molremote remote helpers (kernels_templates/remote_common.sh, shared by the ssh and slurm scripts)
BUNDLE_SHA=@{bundle_sha}
BUNDLE_FILE=$ROOT/bundles/bundle-${BUNDLE_SHA:0:16}.tar.gz
CODE=$ROOT/code/${BUNDLE_SHA:0:16}
DEPS_HASH=@{deps_hash}
PYTHON=@{python}
VENV=@{venv}

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
  export MOLREMOTE_JOB_ID=@{job_id} MOLREMOTE_BACKEND=@{backend} PYTHONUNBUFFERED=1
  if [ -f "$HOME/.config/molremote/env" ]; then set -a; . "$HOME/.config/molremote/env"; set +a; fi
}

# `remote --resume JOB`: before a fold trains, its run folder in that earlier job (same remote root) moves into
# this job, so the trainer resumes from the run's last checkpoint. Refused while a trainer holds the run's lock.
RESUME_JOB=@{resume_job}
adopt_run() {
  [ -n "$RESUME_JOB" ] || return 0
  local key=@{run_dir}/fold"$1"-@{config_hash}
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
