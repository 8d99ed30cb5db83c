#!/usr/bin/env bash
# Loopback-only SSH + SLURM for tests and CI, on Debian 12, run as root, without systemd:
#   - OpenSSH server on 127.0.0.1:$SSH_PORT with throwaway host + user keys, plus a known_hosts file and an
#     ssh_config that keep host-key checking ON (tests never use StrictHostKeyChecking=no)
#   - SLURM 22.05 (munge, slurmctld, slurmd; MariaDB + slurmdbd so `sacct` works) with two compute nodes in one
#     partition: node1 is this host (10.77.0.1); node2 is a second slurmd (`-N node2`) inside its own network
#     namespace (molremote-node2, veth pair 10.77.0.1 host / 10.77.0.2 namespace, no other route), sharing
#     munge's socket and the filesystem. node1 has the lower Weight: one-node jobs go there while it has room.
#     Where the namespace cannot be made (no CAP_SYS_ADMIN, no veth), node1 alone on 127.0.0.1 and the reason
#     in $INFRA_DIR/node2.unavailable (`nodes` prints it; the two-node tests skip with it).
# Adapted from shared/infra/loopback-cluster.sh; every subcommand is idempotent.
#
# usage: scripts/loopback-cluster.sh install | start | stop | status | env | smoke
#   install  apt-get the packages, only those missing (nothing to do: returns in well under a second)
#   start    start what is not already running (fresh state for what it starts); prints env lines
#   stop     cancel jobs, then stop every daemon by its PID file, in reverse order
#   status   one line per daemon; exit 0 only when everything is up
#   env      print the env lines (export INFRA_...) for a running cluster
#   nodes    one line: the compute nodes and where they run, or why node2 is unavailable
#   smoke    quick end-to-end check (ssh with host-key checking, rsync, sbatch, array, sacct, 2-node srun)
# env knobs: INFRA_DIR (default /tmp/molremote-loopback), SSH_PORT (2222), WITH_DBD (1), SLURM_CPUS (8),
#            SLURM_MEM (4000), SLURM_NODES (2; 1: no namespace, node1 on 127.0.0.1 as before)
set -euo pipefail

INFRA_DIR=${INFRA_DIR:-/tmp/molremote-loopback}
SSH_PORT=${SSH_PORT:-2222}
WITH_DBD=${WITH_DBD:-1}
SLURM_CPUS=${SLURM_CPUS:-8}          # advertised CPUs (config_overrides lets it exceed nproc)
SLURM_MEM=${SLURM_MEM:-4000}         # MB, must be <= real memory unless config_overrides
SSHD_DIR=$INFRA_DIR/ssh
SLURM_DIR=$INFRA_DIR/slurm
DB_DIR=$INFRA_DIR/db
SSH_OPTS=(-F "$SSHD_DIR/ssh_config" loopback)
SLURM_NODES=${SLURM_NODES:-2}
NETNS=molremote-node2               # node2's network namespace
VETH=mrnode2                        # the veth pair: this name on both ends (one per namespace), so one
                                    # GLOO_SOCKET_IFNAME=mrnode2 names the right interface on either node
HOST_IP=10.77.0.1 NODE2_IP=10.77.0.2
UNAVAILABLE=$INFRA_DIR/node2.unavailable

log() { printf '[loopback %s] %s\n' "$(date +%T.%3N)" "$*" >&2; }
now_ms() { date +%s%3N; }
die() { log "ERROR: $*"; exit 1; }
wait_for() { # wait_for <timeout_s> <cmd...>
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && { log "timeout waiting for: $*"; return 1; }
    sleep 0.1
  done
}
# a zombie still answers kill -0; PID 1 here (not systemd) may reap orphans late, so check the state
is_running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $st != Z* ]]; }
pid_alive() { [ -s "$1" ] && is_running "$(cat "$1")"; }
stop_pidfile() { # stop_pidfile <name> <pidfile>
  local pf=$2 pid
  [ -s "$pf" ] || return 0
  pid=$(cat "$pf")
  if is_running "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do is_running "$pid" || break; sleep 0.1; done
    is_running "$pid" && { log "$1 ($pid) ignored SIGTERM, sending SIGKILL"; kill -9 "$pid" || true; }
    log "stopped $1 (pid $pid)"
  fi
  rm -f "$pf"
}
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (starts sshd, munged, slurmctld, slurmd)"; }

PKGS=(openssh-server openssh-client rsync munge slurm-wlm slurm-client procps iproute2)
DBD_PKGS=(slurmdbd mariadb-server)

cmd_install() {
  need_root
  local want=("${PKGS[@]}") missing=() p
  [ "$WITH_DBD" = 1 ] && want+=("${DBD_PKGS[@]}")
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "packages already installed"; return 0; fi
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
  export DEBIAN_FRONTEND=noninteractive
  log "apt-get install ${missing[*]}"
  apt-get update -q >/dev/null
  # no systemd here: postinst scripts do not start services (nothing to undo)
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  log "installed ${missing[*]}"
}

ssh_up() { pid_alive "$SSHD_DIR/sshd.pid" && ssh "${SSH_OPTS[@]}" true >/dev/null 2>&1; }

start_sshd() {
  if ssh_up; then log "sshd already up (pid $(cat "$SSHD_DIR/sshd.pid"))"; return 0; fi
  stop_pidfile sshd "$SSHD_DIR/sshd.pid"
  local t0; t0=$(now_ms)
  command -v /usr/sbin/sshd >/dev/null || die "sshd missing: run '$0 install' first"
  mkdir -p "$SSHD_DIR"
  install -d -m 0755 /run/sshd                      # privilege-separation dir, sshd refuses to start without it
  rm -f "$SSHD_DIR"/hostkey* "$SSHD_DIR"/userkey*
  ssh-keygen -q -t ed25519 -N '' -C molremote-loopback-host -f "$SSHD_DIR/hostkey"
  ssh-keygen -q -t ed25519 -N '' -C molremote-loopback-user -f "$SSHD_DIR/userkey"
  install -m 0600 "$SSHD_DIR/userkey.pub" "$SSHD_DIR/authorized_keys_root"
  # host-key checking stays on: clients trust exactly this host key through this known_hosts file
  echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$SSHD_DIR/hostkey.pub")" > "$SSHD_DIR/known_hosts"
  cat > "$SSHD_DIR/ssh_config" <<CONF
Host loopback
  HostName 127.0.0.1
  Port $SSH_PORT
  User root
  IdentityFile $SSHD_DIR/userkey
  IdentitiesOnly yes
  UserKnownHostsFile $SSHD_DIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
CONF
  cat > "$SSHD_DIR/sshd_config" <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/hostkey
PidFile $SSHD_DIR/sshd.pid
# %u: one file per user; the file must be readable by that user (sshd reads it with the user's uid)
AuthorizedKeysFile $SSHD_DIR/authorized_keys_%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
Subsystem sftp internal-sftp
LogLevel VERBOSE
CONF
  /usr/sbin/sshd -t -f "$SSHD_DIR/sshd_config"
  # absolute -f path matters: SIGHUP re-exec happens after chdir("/")
  /usr/sbin/sshd -f "$SSHD_DIR/sshd_config" -E "$SSHD_DIR/sshd.log"
  wait_for 10 ssh "${SSH_OPTS[@]}" true || die "sshd did not answer; see $SSHD_DIR/sshd.log"
  log "sshd up on 127.0.0.1:$SSH_PORT (pid $(cat "$SSHD_DIR/sshd.pid")) in $(( $(now_ms) - t0 )) ms"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then log "munged already running"; return 0; fi
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key   # normally made by the munge postinst
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key
  chmod 0700 /etc/munge; chmod 0600 /etc/munge/munge.key   # munged refuses group/other-readable keys
  install -d -o munge -g munge -m 0755 /run/munge /var/log/munge /var/lib/munge
  chmod 0700 /var/log/munge
  runuser -u munge -- /usr/sbin/munged                 # daemonizes; pid in /run/munge/munged.pid
  wait_for 10 bash -c 'munge -n | unmunge' || die "munged did not start"
  log "munged up (pid $(cat /run/munge/munged.pid))"
}

start_db() {
  local t0; t0=$(now_ms)
  rm -rf "$DB_DIR"; install -d -o mysql -g mysql "$DB_DIR"      # mysql user must be able to write here
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  mariadb-install-db --user=mysql --datadir="$DB_DIR/data" --auth-root-authentication-method=socket \
      --skip-test-db > "$DB_DIR/install.log" 2>&1
  # setsid: the daemon must not hold the caller's stdout/stderr pipe open (pytest's subprocess would hang)
  setsid /usr/sbin/mariadbd --user=mysql --datadir="$DB_DIR/data" --socket=/run/mysqld/mysqld.sock \
      --pid-file="$DB_DIR/mariadb.pid" --skip-networking --log-error="$DB_DIR/mariadb.err" \
      > "$DB_DIR/stdout" 2>&1 < /dev/null &
  wait_for 30 mariadb -e 'select 1' || die "mariadb did not start; see $DB_DIR/mariadb.err"
  log "mariadb up (pid $(cat "$DB_DIR/mariadb.pid")) in $(( $(now_ms) - t0 )) ms"
  cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=$SLURM_DIR/log/slurmdbd.log
PidFile=$SLURM_DIR/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=root
CONF
  # MariaDB root uses unix_socket auth and slurmdbd runs as root: no password needed
  chmod 0600 /etc/slurm/slurmdbd.conf                 # slurmdbd refuses a world-readable slurmdbd.conf
  t0=$(now_ms)
  slurmdbd
  wait_for 30 bash -c "ss -ltn | grep -q ':6819 '" || die "slurmdbd did not start; see $SLURM_DIR/log/slurmdbd.log"
  log "slurmdbd up (pid $(cat "$SLURM_DIR/slurmdbd.pid")) in $(( $(now_ms) - t0 )) ms"
}

write_slurm_conf() { # write_slurm_conf <1|2 nodes>
  local host acct ctld nodes res="CPUs=$SLURM_CPUS RealMemory=$SLURM_MEM State=UNKNOWN" first=1
  host=$(hostname -s)
  # a restart keeps the accounting database but `slurmctld -c` forgets the last job id: continue after the
  # highest one recorded, so `sacct -j ID` never finds two jobs
  if [ "$WITH_DBD" = 1 ] && db_up; then
    first=$(mariadb -N -e "select coalesce(max(id_job),0)+1 from slurm_acct_db.molremote_job_table" 2>/dev/null) \
      || first=1
  fi
  if [ "$1" = 2 ]; then
    # slurmctld listens on every address; node2's daemons and jobs reach it (and node1) at 10.77.0.1
    ctld="localhost($HOST_IP)"
    # Weight: the scheduler fills node1 first, so one-node jobs run on the host unless it is full
    nodes="NodeName=node1 NodeHostname=$host NodeAddr=$HOST_IP $res Weight=1
NodeName=node2 NodeHostname=$host NodeAddr=$NODE2_IP $res Weight=2"
  else
    ctld=localhost
    nodes="NodeName=localhost NodeHostname=$host NodeAddr=127.0.0.1 $res"
  fi
  if [ "$WITH_DBD" = 1 ]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
  else
    acct="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
  fi
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=molremote
SlurmctldHost=$ctld
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# requeued jobs wait cred_expire+1 s before they may start again (default 120)
AuthInfo=cred_expire=10
SlurmctldPort=6817
FirstJobId=${first:-1}
SlurmdPort=6818
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# defaults delay batch job starts by up to 3 s (batch_sched_delay) and pending->eligible by 30-60 s
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=2,bf_interval=1
MpiDefault=none
SwitchType=switch/none
$acct
# without slurmdbd, 'sacct -c' still reads this file
JobCompType=jobcomp/filetxt
JobCompLoc=$SLURM_DIR/log/jobcomp.txt
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
KillWait=5
OverTimeLimit=0
InactiveLimit=0
JobRequeue=1
SlurmdParameters=config_overrides
# node2's slurmd reads a copy of this file that differs only in its own pid/spool/log paths
DebugFlags=NO_CONF_HASH
$nodes
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  # node2: its own pid file, spool and log (node1 keeps slurmd.pid, which older copies of this script check)
  sed -e "s|^SlurmdPidFile=.*|SlurmdPidFile=$SLURM_DIR/slurmd-node2.pid|" \
      -e "s|^SlurmdSpoolDir=.*|SlurmdSpoolDir=$SLURM_DIR/spool-node2|" \
      -e "s|^SlurmdLogFile=.*|SlurmdLogFile=$SLURM_DIR/log/slurmd-node2.log|" \
      /etc/slurm/slurm.conf > "$SLURM_DIR/slurm-node2.conf"
}

# ---- node2's network namespace: a veth pair, 10.77.0.1 here and 10.77.0.2 there, no other address or route
netns_up() {
  ip -n "$NETNS" -4 -o addr show dev "$VETH" 2>/dev/null | grep -q " $NODE2_IP/" \
    && ip -4 -o addr show dev "$VETH" 2>/dev/null | grep -q " $HOST_IP/"
}
remove_netns() { # deleting the namespace deletes its end of the veth pair, and with it this end
  ip netns del "$NETNS" 2>/dev/null || true
  ip link del "$VETH" 2>/dev/null || true
}
make_netns() { # prints why not on failure
  netns_up && return 0
  remove_netns
  local err
  if ! err=$( { command -v ip >/dev/null || { echo "iproute2 (ip) not installed"; false; }; } \
      && ip netns add "$NETNS" 2>&1 \
      && ip link add "$VETH" type veth peer name "$VETH" netns "$NETNS" 2>&1 \
      && ip addr add "$HOST_IP/30" dev "$VETH" 2>&1 && ip link set "$VETH" up 2>&1 \
      && ip -n "$NETNS" addr add "$NODE2_IP/30" dev "$VETH" 2>&1 && ip -n "$NETNS" link set "$VETH" up 2>&1 \
      && ip -n "$NETNS" link set lo up 2>&1); then
    remove_netns
    echo "cannot make network namespace $NETNS with a veth pair: ${err:-unknown error}" | tr '\n' ' '
    return 1
  fi
  log "network namespace $NETNS: $VETH $HOST_IP (host) <-> $NODE2_IP (namespace)"
}

# Node names resolve to 127.0.0.1, which on each node is that node itself (the namespace has its own loopback):
# a one-node job that uses its node's name as an address (older molremote job scripts: MASTER_ADDR) works on
# either node, as it did when the single node was called localhost. Between nodes, addresses are NodeAddr.
HOSTS_MARK="# molremote loopback-cluster node names"
add_host_names() {
  grep -qF "$HOSTS_MARK" /etc/hosts && return 0
  [ -z "$(tail -c1 /etc/hosts)" ] || echo >> /etc/hosts     # the file may lack its last newline
  echo "127.0.0.1 node1 node2 $HOSTS_MARK" >> /etc/hosts
}
remove_host_names() { # rewritten in place: /etc/hosts may be a bind mount
  grep -qF "$HOSTS_MARK" /etc/hosts || return 0
  local kept; kept=$(grep -vF "$HOSTS_MARK" /etc/hosts); printf '%s\n' "$kept" > /etc/hosts
}

# 2 when node2 can run (its namespace is up or was just made), else 1 with the reason in $UNAVAILABLE
wanted_nodes() {
  local why
  if [ "$SLURM_NODES" = 1 ]; then echo "SLURM_NODES=1" > "$UNAVAILABLE"; echo 1; return; fi
  if why=$(make_netns); then rm -f "$UNAVAILABLE"; echo 2; return; fi
  echo "$why" > "$UNAVAILABLE"
  log "node2 unavailable, one node only: $why"
  echo 1
}

conf_nodes() { grep -q '^NodeName=node2 ' /etc/slurm/slurm.conf 2>/dev/null && echo 2 || echo 1; }
node_ok() { sinfo -h -n "$1" -o '%T' 2>/dev/null | grep -qxE 'idle|mixed|allocated|completing'; }

slurm_up() { # slurm_up <nodes>: running, with this many nodes configured and answering
  pid_alive "$SLURM_DIR/slurmctld.pid" && pid_alive "$SLURM_DIR/slurmd.pid" && [ "$(conf_nodes)" = "$1" ] \
    && sinfo -h -o '%T' 2>/dev/null | grep -qxE 'idle|mixed|allocated|completing' || return 1
  [ "$1" = 1 ] || { pid_alive "$SLURM_DIR/slurmd-node2.pid" && netns_up && node_ok node1 && node_ok node2 \
                    && grep -qF "$HOSTS_MARK" /etc/hosts; }
}

db_up() { pid_alive "$DB_DIR/mariadb.pid" && pid_alive "$SLURM_DIR/slurmdbd.pid"; }

start_slurm() {
  local n t0
  n=$(wanted_nodes)
  if slurm_up "$n"; then log "slurm already up ($n node(s))"; return 0; fi
  command -v slurmctld >/dev/null || die "slurm missing: run '$0 install' first"
  # a restart (e.g. from one node to two) keeps munge and the accounting database: only slurm's daemons restart
  stop_slurm_daemons
  mkdir -p "$SLURM_DIR"/{state,spool,spool-node2,log,jobs} /etc/slurm
  rm -rf "$SLURM_DIR"/state/* "$SLURM_DIR"/spool/* "$SLURM_DIR"/spool-node2/*
  write_slurm_conf "$n"
  start_munge
  if [ "$WITH_DBD" = 1 ] && ! db_up; then stop_db; start_db; fi
  t0=$(now_ms)
  slurmctld -c          # daemonizes; -c = start with clean state
  if [ "$n" = 2 ]; then
    add_host_names
    slurmd -N node1 || die "slurmd node1 did not start; see $SLURM_DIR/log/slurmd.log"  # both nodes share this
                        # host's name: each slurmd is told which node it is
    # nsenter --net, not `ip netns exec`: that one also remounts /sys, which hides the cgroup mount slurmd needs
    nsenter --net="/run/netns/$NETNS" slurmd -N node2 -f "$SLURM_DIR/slurm-node2.conf" \
      || die "slurmd node2 did not start: $(tail -n 3 "$SLURM_DIR/log/slurmd-node2.log" | tr '\n' ' ')"
    wait_for 30 bash -c "sinfo -h -N -n node1,node2 -o '%T' | grep -cx idle | grep -qx 2" \
      || die "slurm nodes not idle: $(sinfo -h -N -o '%N %T %E' | tr '\n' ';') see $SLURM_DIR/log"
    log "slurmctld (pid $(cat "$SLURM_DIR/slurmctld.pid")) + slurmd node1 (pid $(cat "$SLURM_DIR/slurmd.pid"))" \
        "+ slurmd node2 in $NETNS (pid $(cat "$SLURM_DIR/slurmd-node2.pid")) idle in $(( $(now_ms) - t0 )) ms"
  else
    slurmd                # daemonizes
    wait_for 30 bash -c "sinfo -h -o '%T' | grep -qx idle" || die "slurm node not idle; see $SLURM_DIR/log"
    log "slurmctld (pid $(cat "$SLURM_DIR/slurmctld.pid")) + slurmd (pid $(cat "$SLURM_DIR/slurmd.pid")) idle in $(( $(now_ms) - t0 )) ms"
  fi
}

cmd_env() {
  local n; n=$(conf_nodes)
  echo "export INFRA_DIR=$INFRA_DIR INFRA_SSH_PORT=$SSH_PORT INFRA_SSH_KEY=$SSHD_DIR/userkey" \
       "INFRA_SSH_CONFIG=$SSHD_DIR/ssh_config INFRA_SSH_KNOWN_HOSTS=$SSHD_DIR/known_hosts" \
       "INFRA_SSH_HOST=loopback INFRA_SLURM_JOBDIR=$SLURM_DIR/jobs INFRA_SLURM_NODES=$n" \
       "$([ "$n" = 2 ] && echo "INFRA_NODE_IFNAME=$VETH")"
}

cmd_start() {
  need_root
  local t0; t0=$(now_ms)
  mkdir -p "$INFRA_DIR"
  # test sessions of several checkouts start the shared cluster at once: one start at a time, the others
  # then find it up
  exec 9> "$INFRA_DIR/start.lock"
  flock -w 300 9 || die "another start held $INFRA_DIR/start.lock for 300 s"
  # 9>&-: the daemons started below must not inherit the lock's descriptor, or munged and mariadbd hold
  # the lock for as long as they run and every later start waits 300 s and fails
  start_sshd 9>&-
  start_slurm 9>&-
  log "all up in $(( $(now_ms) - t0 )) ms"
  cmd_env
}

stop_slurm_daemons() {
  if pid_alive "$SLURM_DIR/slurmctld.pid"; then
    scancel --user=root 2>/dev/null || true            # running jobs' slurmstepd survive slurmd otherwise
    for _ in $(seq 150); do [ -z "$(squeue -h -t R,CG,S 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  stop_pidfile slurmd-node2 "$SLURM_DIR/slurmd-node2.pid"
  stop_pidfile slurmd "$SLURM_DIR/slurmd.pid"
  stop_pidfile slurmctld "$SLURM_DIR/slurmctld.pid"
}

stop_db() {
  stop_pidfile slurmdbd "$SLURM_DIR/slurmdbd.pid"
  stop_pidfile mariadbd "$DB_DIR/mariadb.pid"
}

stop_slurm() { stop_slurm_daemons; stop_db; }

cmd_stop() {
  stop_slurm
  remove_netns
  remove_host_names
  stop_pidfile munged /run/munge/munged.pid
  stop_pidfile sshd "$SSHD_DIR/sshd.pid"
  true
}

cmd_status() {
  local rc=0 pf pfs=("$SSHD_DIR/sshd.pid" /run/munge/munged.pid "$SLURM_DIR/slurmctld.pid" "$SLURM_DIR/slurmd.pid")
  [ "$(conf_nodes)" = 2 ] && pfs+=("$SLURM_DIR/slurmd-node2.pid")
  [ "$WITH_DBD" = 1 ] && pfs+=("$DB_DIR/mariadb.pid" "$SLURM_DIR/slurmdbd.pid")
  for pf in "${pfs[@]}"; do
    if pid_alive "$pf"; then echo "up   $(cat "$pf") $pf"; else echo "down      $pf"; rc=1; fi
  done
  cmd_nodes
  sinfo -N 2>/dev/null || rc=1
  return $rc
}

cmd_nodes() {
  if [ "$(conf_nodes)" = 2 ] && netns_up; then
    echo "2 nodes: node1 on this host ($HOST_IP), node2 in network namespace $NETNS ($NODE2_IP)"
  elif [ -s "$UNAVAILABLE" ]; then
    echo "1 node: node2 unavailable: $(cat "$UNAVAILABLE")"
  else
    echo "1 node: node2 not started (run '$0 start')"
  fi
}

cmd_smoke() {
  local j a m out
  out=$(ssh "${SSH_OPTS[@]}" 'echo ok') && [ "$out" = ok ] || die "ssh echo failed"
  echo "ssh: $out (host key checked against $SSHD_DIR/known_hosts)"
  rm -rf "$INFRA_DIR/rsync-src" "$INFRA_DIR/rsync-dst"; mkdir -p "$INFRA_DIR/rsync-src"
  date > "$INFRA_DIR/rsync-src/f"
  rsync -a -e "ssh -F $SSHD_DIR/ssh_config" "$INFRA_DIR/rsync-src/" loopback:"$INFRA_DIR/rsync-dst/"
  cmp "$INFRA_DIR/rsync-src/f" "$INFRA_DIR/rsync-dst/f" || die "rsync copy differs"
  echo "rsync: ok"
  cd "$SLURM_DIR/jobs"
  j=$(sbatch --parsable --wrap 'hostname; sleep 1')
  a=$(sbatch --parsable --array=0-3 --wrap 'echo task=$SLURM_ARRAY_TASK_ID')
  if [ "$(conf_nodes)" = 2 ]; then  # one step over both nodes: each task names its node and its address
    m=$(sbatch --parsable --nodes=2 --ntasks-per-node=1 \
        --wrap "srun bash -c 'echo \$SLURMD_NODENAME \$(ip -4 -o addr show dev $VETH | cut -d\" \" -f7)'")
  fi
  wait_for 60 bash -c "[ -z \"\$(squeue -h -j $j,$a${m:+,$m})\" ]" || die "jobs $j,$a${m:+,$m} did not finish"
  scontrol show job "$j" | grep -q 'JobState=COMPLETED' || die "job $j not COMPLETED"
  echo "sbatch: job $j COMPLETED: $(cat "slurm-$j.out")"
  grep -q 'task=3' "slurm-${a}_3.out" || die "array task 3 output missing"
  echo "array: $a tasks 0-3 ok"
  if [ -n "${m:-}" ]; then
    grep -qx "node1 $HOST_IP/30" "slurm-$m.out" && grep -qx "node2 $NODE2_IP/30" "slurm-$m.out" \
      || die "2-node srun job $m: expected node1 $HOST_IP and node2 $NODE2_IP, got: $(cat "slurm-$m.out")"
    echo "2 nodes: job $m ran on $(tr '\n' ' ' < "slurm-$m.out")"
  fi
  if [ "$WITH_DBD" = 1 ]; then
    wait_for 10 bash -c "sacct -n -X -j $j -o State | grep -q COMPLETED" || die "sacct has no COMPLETED record for $j"
    sacct -X -j "$j,$a" -o JobID,State,ExitCode
  fi
  echo "smoke: ok"
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    cmd_stop ;;
  status)  cmd_status ;;
  env)     cmd_env ;;
  nodes)   cmd_nodes ;;
  smoke)   cmd_smoke ;;
  *) echo "usage: $0 install|start|stop|status|env|nodes|smoke" >&2; exit 2 ;;
esac
