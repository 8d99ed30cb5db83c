# ---- molremote DDP over srun (kernels_templates/slurm_ddp.sh): @{nodes} node(s) x @{nproc} process(es)
# srun starts every process itself, one task per process: the rank is SLURM_PROCID, and the ranks meet at rank
# 0's TCP store on the first node of the allocation (PyTorch's env:// init), on a port derived from the job id.
# No torchrun: its agent imports torch on each node before it starts the workers, which import it again, and
# only then can a job checkpoint (15-35 s more on a loaded machine: benchmarks/slurm_start.py).
# Nodes are reached at their SLURM NodeAddr (the node name unless the cluster sets one), as slurmctld does.
node_addr() {
  local a; a=$(scontrol show node "$1" 2>/dev/null | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2); echo "${a:-$1}"
}
export MASTER_ADDR=$(node_addr "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)")
export MASTER_PORT=$((15000 + SLURM_JOB_ID % 15000))  # below the ephemeral range; distinct per running job

# One rank. SLURM signals every process of a step: until the trainer runs, USR1 is ignored here (a relayed one
# would kill the $(...) helpers, and the batch shell touched the stop file before relaying it); the trainer
# inherits that until it installs its handler and looks for the stop file (training/early.py). Then this task
# touches the file too and forwards USR1 (a second one is harmless); TERM goes to the trainer.
rank_main() {
  trap '' USR1
  export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID LOCAL_WORLD_SIZE=@{nproc}
  [ "$SLURM_LOCALID" = 0 ] && echo "[molremote $(date +%H:%M:%S)] node $SLURMD_NODENAME" \
    "($(node_addr "$SLURMD_NODENAME")): @{ranks} of $WORLD_SIZE, store at $MASTER_ADDR:$MASTER_PORT"
  "$PY" @{trainer} &
  CHILD=$!
  trap 'GOT_SIGNAL=1; touch "$MOLREMOTE_STOP_FILE"; kill -USR1 "$CHILD" 2>/dev/null' USR1
  trap 'GOT_SIGNAL=1; kill -TERM "$CHILD" 2>/dev/null' TERM
  local rc
  wait_child; rc=$?
  [ "$rc" = 0 ] || echo "[molremote $(date +%H:%M:%S)] node $SLURMD_NODENAME rank $RANK: trainer exit $rc"
  return "$rc"
}
export -f rank_main node_addr wait_child

# srun exits with the highest code of its tasks: the run's manifest, if this attempt wrote it, says whether the
# run stopped resumable (75) or complete (0) (a rank that stopped at a peer's failure may exit 1); anything
# else keeps srun's code.
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
