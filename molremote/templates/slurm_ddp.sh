# ---- molremote DDP over srun (kernels_templates/slurm_ddp.sh): @{nodes} node(s) x @{nproc} process(es)
# srun starts one task per node; each runs torchrun, which starts the node's processes and meets the other
# nodes at a c10d rendezvous hosted on the first node of the allocation, on a port derived from the job id.
# Nodes are reached at their SLURM NodeAddr (the node name unless the cluster sets one), as slurmctld does.
node_addr() {
  local a; a=$(scontrol show node "$1" 2>/dev/null | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2); echo "${a:-$1}"
}
export MASTER_ADDR=$(node_addr "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)")
export MASTER_PORT=$((15000 + SLURM_JOB_ID % 15000))  # below the ephemeral range; distinct per running job

# One node's share. SLURM signals every process of a step (and some clusters only the task): torchrun itself
# ignores USR1, since its default action would kill it and orphan the workers mid-checkpoint; the workers
# install their own handler (checkpoint, exit 75) and this task forwards USR1 to them too (a second USR1 is
# harmless). A USR1 that comes before the workers listen (torchrun still importing torch) is kept as the stop
# file, which the batch shell and this task touch before they pass any signal on (training/early.py). TERM goes
# to torchrun, which stops its workers.
# NODE_ADDR: the address this node publishes to the others (torchrun's default, the host name, may resolve to a
# loopback address); RDZV_IS_HOST: the first node hosts the rendezvous store (torchrun's guess compares host
# names and misses when MASTER_ADDR is an address of a secondary interface).
node_main() {
  # SLURM signals every process of the step: until torchrun runs, USR1 is ignored (a relayed one would kill the
  # $(...) helpers below, and the batch shell touched the stop file before relaying it); torchrun inherits that
  trap '' USR1
  NODE_ADDR=$(node_addr "$SLURMD_NODENAME")
  RDZV_IS_HOST=$([ "$SLURM_NODEID" = 0 ] && echo 1 || echo 0)
  local rc
  echo "[molremote $(date +%H:%M:%S)] node $SLURMD_NODENAME ($NODE_ADDR): torchrun, @{nproc} process(es)," \
       "rendezvous at $MASTER_ADDR:$MASTER_PORT"
  @{torchrun} &
  CHILD=$!
  trap 'GOT_SIGNAL=1; touch "$MOLREMOTE_STOP_FILE"; pkill -USR1 -P "$CHILD"' USR1
  trap 'GOT_SIGNAL=1; kill -TERM "$CHILD" 2>/dev/null' TERM
  wait_child; rc=$?
  [ "$rc" = 0 ] || echo "[molremote $(date +%H:%M:%S)] node $SLURMD_NODENAME: torchrun exit $rc"
  return "$rc"
}
export -f node_main node_addr wait_child

# torchrun reports a worker's exit 75 as a plain failure: the run's manifest, if this attempt wrote it, says
# whether the run stopped resumable (75) or complete (0); anything else keeps torchrun's code.
ddp_exit() {
  local m status=
  [ "$1" = 0 ] && { echo 0; return; }
  m=$(find "$MOLREMOTE_RUNS" -path "*/fold$FOLD-*/manifest.json" -newer "state/fold$FOLD.attempt" 2>/dev/null | head -n1)
  [ -n "$m" ] && status=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("status", ""))' "$m")
  case "$status" in
    complete) echo 0 ;;
    incomplete) echo 75 ;;
    *) echo "$1" ;;
  esac
}
touch "state/fold$FOLD.attempt"
# ---- end of DDP helpers
