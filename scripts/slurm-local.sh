#!/usr/bin/env bash
# slurm-local.sh - a private, single-host Slurm cluster for velora's tests.
#
# Debian 12 (Slurm 22.05), root, no systemd needed. Everything lives in one folder
# ($SLURM_LOCAL_DIR, default /tmp/slurm-local): its own munged (own key and socket),
# one slurmctld and N `slurmd -N nodeX` on 127.0.0.1, each node with its own Port=.
#
# Usage:
#   bash scripts/slurm-local.sh install   # apt-get install slurmctld slurmd slurm-client munge
#   eval "$(bash scripts/slurm-local.sh start)"   # prints only `export SLURM_CONF=...` on stdout
#   bash scripts/slurm-local.sh status    # "up" + sinfo, exit 0; "down"/"degraded", exit 1
#   bash scripts/slurm-local.sh stop      # cancel all jobs, stop daemons by recorded PIDs
#   bash scripts/slurm-local.sh ctld-stop   # stop only slurmctld (a controller outage)
#   bash scripts/slurm-local.sh ctld-start  # start it again from its saved state
#
# `start` is idempotent (flock): if the cluster is already up with the same settings it
# prints the exports and returns at once; with other settings it restarts the cluster.
# A fresh start wipes the previous state: job IDs restart at 1 (the probe jobs that
# `start` runs to make sure the cluster schedules take the first IDs).
# If the Slurm packages are missing, `start` installs them first (SLURM_LOCAL_AUTO_INSTALL=0
# turns that off). All messages go to stderr; only `start` writes (the exports) to stdout.
# `stop` is idempotent: it cancels every job, waits for them to end, stops the daemons by
# the PIDs in $SLURM_LOCAL_DIR/run/*.pid, then kills processes that jobs of this cluster
# left behind (found by their SLURM_* job environment; proctrack/linuxproc misses
# double-forked children).
#
# Settings (environment):
#   SLURM_LOCAL_DIR           /tmp/slurm-local  state, config, logs, sockets (no spaces)
#   SLURM_LOCAL_NODES         2        number of nodes: node1..nodeN (1-16)
#   SLURM_LOCAL_CPUS          8        CPUs declared per node (may exceed the real cores)
#   SLURM_LOCAL_MEM_MB        1024     RealMemory per node (memory is not a consumable)
#   SLURM_LOCAL_PORT          6817     slurmctld port; node N listens on PORT+N
#   SLURM_LOCAL_MIN_JOB_AGE   300      seconds a finished job stays visible in squeue -t all
#   SLURM_LOCAL_KILL_WAIT     2        seconds between SIGTERM and SIGKILL on cancel/timeout
#   SLURM_LOCAL_TIMEOUT       30       seconds `start` waits for nodes + probe jobs
#   SLURM_LOCAL_LOCK_TIMEOUT  600      seconds to wait for another start/stop holding the lock
#   SLURM_LOCAL_PROBE         1        0: don't wait for a probe batch job in `start`
#   SLURM_LOCAL_KEEP_STATE    0        1: don't wipe slurmctld state on a fresh start
#   SLURM_LOCAL_LINK_ETC      1        1: symlink /etc/slurm/slurm.conf to our config if free
#   SLURM_LOCAL_AUTO_INSTALL  1        1: `start` runs `install` when packages are missing
#
# Logs: $SLURM_LOCAL_DIR/log/{slurmctld.log,slurmd-nodeN.log,jobcomp.txt,munged.log}.

set -euo pipefail
umask 022
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"
export LC_ALL=C

PROG=slurm-local
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- settings
BASE_RAW=${SLURM_LOCAL_DIR:-/tmp/slurm-local}
NODES=${SLURM_LOCAL_NODES:-2}
CPUS=${SLURM_LOCAL_CPUS:-8}
MEM_MB=${SLURM_LOCAL_MEM_MB:-1024}
PORT=${SLURM_LOCAL_PORT:-6817}
MIN_JOB_AGE=${SLURM_LOCAL_MIN_JOB_AGE:-300}
KILL_WAIT=${SLURM_LOCAL_KILL_WAIT:-2}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-30}
LOCK_TIMEOUT=${SLURM_LOCAL_LOCK_TIMEOUT:-600}
PROBE=${SLURM_LOCAL_PROBE:-1}
KEEP_STATE=${SLURM_LOCAL_KEEP_STATE:-0}
LINK_ETC=${SLURM_LOCAL_LINK_ETC:-1}
AUTO_INSTALL=${SLURM_LOCAL_AUTO_INSTALL:-1}

PACKAGES=(slurmctld slurmd slurm-client munge)
BINARIES=(slurmctld slurmd sbatch squeue sinfo scontrol scancel munged munge unmunge)

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
check_settings() {
  is_uint "$NODES" && ((NODES >= 1 && NODES <= 16)) || die "SLURM_LOCAL_NODES must be 1..16 (got '$NODES')"
  is_uint "$CPUS" && ((CPUS >= 1)) || die "SLURM_LOCAL_CPUS must be >= 1 (got '$CPUS')"
  is_uint "$MEM_MB" && ((MEM_MB >= 1)) || die "SLURM_LOCAL_MEM_MB must be >= 1 (got '$MEM_MB')"
  is_uint "$PORT" && ((PORT >= 1024 && PORT + NODES <= 65535)) || die "bad SLURM_LOCAL_PORT '$PORT'"
  is_uint "$MIN_JOB_AGE" && ((MIN_JOB_AGE >= 2)) || die "SLURM_LOCAL_MIN_JOB_AGE must be >= 2 (got '$MIN_JOB_AGE')"
  is_uint "$KILL_WAIT" || die "bad SLURM_LOCAL_KILL_WAIT '$KILL_WAIT'"
  is_uint "$TIMEOUT" && ((TIMEOUT >= 1)) || die "bad SLURM_LOCAL_TIMEOUT '$TIMEOUT'"
  is_uint "$LOCK_TIMEOUT" || die "bad SLURM_LOCAL_LOCK_TIMEOUT '$LOCK_TIMEOUT'"
}

# The folder must be absolute and contain no whitespace (slurm.conf can't quote paths).
[[ $BASE_RAW != *[[:space:]]* ]] || die "SLURM_LOCAL_DIR must not contain whitespace: '$BASE_RAW'"
BASE=$(realpath -m -- "$BASE_RAW")
[[ $BASE != / ]] || die "SLURM_LOCAL_DIR must not be /"

CONF=$BASE/etc/slurm.conf
RUN=$BASE/run
LOGD=$BASE/log
MUNGE_DIR=$BASE/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
MUNGE_KEY=$MUNGE_DIR/munge.key
READY=$RUN/ready
ETC_LINK=/etc/slurm/slurm.conf

now_ms() { date +%s%3N; }
T0=$(now_ms)
elapsed() { local t; t=$(($(now_ms) - T0)); printf '%d.%03ds' $((t / 1000)) $((t % 1000)); }

# --------------------------------------------------------------- processes
# A PID counts as ours and alive when /proc/PID exists, is not a zombie (PID 1 may reap
# late, and kill -0 succeeds on zombies), argv[0] is the expected program, and its
# command line mentions our folder (guards against stale pidfiles and PID reuse).
proc_state() { # PID -> one-letter state, or nothing
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  printf '%s' "${stat%% *}"
}
pid_is_ours() { # PID PROGRAM
  local pid=$1 want=$2 st argv0 cmd
  is_uint "$pid" && ((pid > 1)) || return 1
  st=$(proc_state "$pid")
  [[ -n $st && $st != Z && $st != X && $st != x ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  argv0=${cmd%% *}
  [[ ${argv0##*/} == "$want" && $cmd == *"$BASE/"* ]]
}
read_pid() { # PIDFILE -> PID or nothing
  local pid=''
  [[ -r $1 ]] && read -r pid <"$1" 2>/dev/null || true
  is_uint "$pid" && printf '%s' "$pid" || true
}
daemon_list() { # prints "PROGRAM PIDFILE" lines for every daemon this folder may run
  local f n
  printf 'munged %s\n' "$RUN/munged.pid"
  printf 'slurmctld %s\n' "$RUN/slurmctld.pid"
  for f in "$RUN"/slurmd-*.pid; do
    [[ -e $f ]] && printf 'slurmd %s\n' "$f"
  done
  for ((n = 1; n <= NODES; n++)); do
    [[ -e $RUN/slurmd-node$n.pid ]] || printf 'slurmd %s\n' "$RUN/slurmd-node$n.pid"
  done
}
daemon_alive() { # PROGRAM PIDFILE
  local pid
  pid=$(read_pid "$2")
  [[ -n $pid ]] && pid_is_ours "$pid" "$1"
}
all_daemons_alive() { # expects the configured NODES
  local n
  daemon_alive munged "$RUN/munged.pid" || return 1
  daemon_alive slurmctld "$RUN/slurmctld.pid" || return 1
  for ((n = 1; n <= NODES; n++)); do
    daemon_alive slurmd "$RUN/slurmd-node$n.pid" || return 1
  done
}
any_daemon_alive() {
  local prog file
  while read -r prog file; do
    daemon_alive "$prog" "$file" && return 0
  done < <(daemon_list)
  return 1
}
# Signal the PIDs recorded in pidfiles (never by name); wait until they are gone.
stop_pids() { # WAIT_SECONDS PROGRAM PIDFILE [PROGRAM PIDFILE ...]
  local wait_s=$1; shift
  local -a progs=() pids=()
  local prog file pid i deadline alive st
  while (($#)); do
    prog=$1 file=$2; shift 2
    pid=$(read_pid "$file")
    if [[ -n $pid ]] && pid_is_ours "$pid" "$prog"; then
      progs+=("$prog") pids+=("$pid")
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  ((${#pids[@]})) || return 0
  deadline=$(($(now_ms) + wait_s * 1000))
  while :; do
    alive=0
    for i in "${!pids[@]}"; do
      pid_is_ours "${pids[$i]}" "${progs[$i]}" && alive=1
    done
    ((alive)) || return 0
    (($(now_ms) < deadline)) || break
    sleep 0.05
  done
  for i in "${!pids[@]}"; do
    if pid_is_ours "${pids[$i]}" "${progs[$i]}"; then
      log "${progs[$i]} (pid ${pids[$i]}) ignored SIGTERM; sending SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < 40; i++)); do
    alive=0
    for pid in "${pids[@]}"; do
      st=$(proc_state "$pid")
      [[ -n $st && $st != Z && $st != X ]] && alive=1
    done
    ((alive)) || return 0
    sleep 0.05
  done
}
# Leftover slurmstepd processes of *this* cluster (only if a job outlived its slurmd):
# identified by an open file descriptor into our folder (they log to our slurmd log).
leftover_stepds() {
  local d pid comm fd
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    read -r comm 2>/dev/null <"$d/comm" || continue
    [[ $comm == slurmstepd* ]] || continue
    for fd in "$d"/fd/*; do
      if [[ $(readlink "$fd" 2>/dev/null) == "$BASE/"* ]]; then
        printf '%s\n' "$pid"
        break
      fi
    done
  done
}

# Orphaned job processes of *this* cluster (a job that ignored SIGTERM and forked while
# being killed can escape proctrack/linuxproc): identified by their Slurm job environment
# (SLURM_CLUSTER_NAME=slurmlocal and our SLURM_CONF or our controller port), never by name.
leftover_job_procs() { # CTLD_PORT
  local f pid env
  # Run from inside one of our own jobs: don't hunt for orphans (we'd match ourselves).
  [[ ${SLURM_JOB_ID:-} && ${SLURM_CLUSTER_NAME:-} == slurmlocal ]] && return 0
  for f in $(grep -l -s -z -x -F 'SLURM_CLUSTER_NAME=slurmlocal' /proc/[0-9]*/environ 2>/dev/null || true); do
    pid=${f#/proc/}; pid=${pid%%/*}
    is_uint "$pid" && ((pid != $$)) || continue
    env=$(tr '\0' '\n' <"$f" 2>/dev/null) || continue
    [[ $env == *$'\n'SLURM_JOB_ID=* || $env == SLURM_JOB_ID=* ]] || continue
    if [[ $env == *"SLURM_CONF=$CONF"$'\n'* || $env == *SLURM_WORKING_CLUSTER=slurmlocal:127.0.0.1:"$1":* ]]; then
      [[ $(proc_state "$pid") == Z ]] || printf '%s\n' "$pid"
    fi
  done
}

port_listening() { # PORT -> 0 if something listens on it (IPv4 or IPv6)
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Slurm client calls: never let one hang (with the controller down each call retries ~9 s).
sl() { SLURM_CONF=$CONF timeout -k 2 20 "$@" </dev/null; }

# ----------------------------------------------------------------- install
packages_installed() {
  local p st b
  for p in "${PACKAGES[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || return 1
    [[ $st == installed ]] || return 1
  done
  for b in "${BINARIES[@]}"; do
    command -v "$b" >/dev/null 2>&1 || return 1
  done
}

cmd_install() {
  if packages_installed; then
    log "packages already installed ($(slurmctld -V 2>/dev/null || echo slurm), $(elapsed))"
    return 0
  fi
  local -a SUDO=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "install needs root (or sudo)"
    SUDO=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script expects Debian/Ubuntu"
  local -a APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get -y -q
    -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

  # Keep package postinsts from starting system daemons (there is no systemd; they would
  # try /etc/init.d). Only if no policy-rc.d exists; removed again afterwards.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    if printf '#!/bin/sh\n# temporary, created by slurm-local.sh install\nexit 101\n' |
      "${SUDO[@]}" tee "$policy" >/dev/null 2>&1 && "${SUDO[@]}" chmod 755 "$policy"; then
      made_policy=1
    fi
  fi

  local rc=0
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    log "apt package lists missing: apt-get update"
    "${APT[@]}" update </dev/null >&2 || log "apt-get update failed (continuing)"
  fi
  log "apt-get install --no-install-recommends ${PACKAGES[*]}"
  if ! "${APT[@]}" install --no-install-recommends "${PACKAGES[@]}" </dev/null >&2; then
    log "install failed: apt-get update and retry"
    "${APT[@]}" update </dev/null >&2 || log "apt-get update failed (continuing)"
    "${APT[@]}" install --no-install-recommends "${PACKAGES[@]}" </dev/null >&2 || rc=$?
  fi

  if ((made_policy)); then "${SUDO[@]}" rm -f "$policy" || true; fi
  ((rc == 0)) || die "apt-get install failed (rc $rc)"
  packages_installed || die "packages installed but binaries missing: ${BINARIES[*]}"
  log "installed $(slurmctld -V 2>/dev/null) in $(elapsed)"
}

# ---------------------------------------------------------------- config
gen_conf() {
  local n
  cat <<EOF
# Generated by scripts/slurm-local.sh - do not edit (start rewrites it).
ClusterName=slurmlocal
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOGD/slurmctld.log
SlurmdLogFile=$LOGD/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
KillWait=$KILL_WAIT
MinJobAge=$MIN_JOB_AGE
InactiveLimit=0
Waittime=0
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGD/jobcomp.txt
MpiDefault=none
MailProg=/bin/true
EOF
  for ((n = 1; n <= NODES; n++)); do
    printf 'NodeName=node%d NodeHostname=localhost NodeAddr=127.0.0.1 Port=%d CPUs=%d RealMemory=%d State=UNKNOWN\n' \
      "$n" $((PORT + n)) "$CPUS" "$MEM_MB"
  done
  printf 'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n'
}

print_exports() { # to the saved stdout (fd 3)
  printf 'export SLURM_CONF=%q\n' "$CONF" >&3
}

link_etc() {
  ((LINK_ETC)) || return 0
  [[ -w /etc ]] || return 0
  local cur
  if [[ -L $ETC_LINK ]]; then
    cur=$(readlink "$ETC_LINK")
    # Replace only our own link or a dangling one (another slurm-local folder that's gone).
    [[ $cur == "$CONF" ]] && return 0
    [[ -e $ETC_LINK && $cur != */etc/slurm.conf ]] && return 0
    [[ -e $ETC_LINK ]] && return 0
  elif [[ -e $ETC_LINK ]]; then
    return 0 # a real config: leave it alone
  fi
  mkdir -p /etc/slurm 2>/dev/null && ln -sfn "$CONF" "$ETC_LINK" 2>/dev/null &&
    log "linked $ETC_LINK -> $CONF (plain squeue works without SLURM_CONF)" || true
}
unlink_etc() {
  [[ -L $ETC_LINK && $(readlink "$ETC_LINK") == "$CONF" ]] && rm -f "$ETC_LINK" 2>/dev/null || true
}

# ------------------------------------------------------------------- stop
# Cancel every job, wait for the jobs to end (so slurmd's slurmstepds kill the job
# processes), then stop slurmd(s), slurmctld and munged by their recorded PIDs.
stop_locked() {
  [[ -d $RUN ]] || return 0
  rm -f "$READY"
  local ctld_port
  ctld_port=$(sed -n 's/^SlurmctldPort=\([0-9]*\)$/\1/p' "$CONF" 2>/dev/null | head -n1 || true)
  ctld_port=${ctld_port:-$PORT}
  if daemon_alive slurmctld "$RUN/slurmctld.pid" && [[ -r $CONF ]]; then
    local ids
    ids=$(sl squeue -h -o '%A' 2>/dev/null | tr -s ' \n' ' ' || true)
    ids=${ids% }; ids=${ids# }
    if [[ -n $ids ]]; then
      log "cancelling jobs: $ids"
      # shellcheck disable=SC2086
      sl scancel $ids >&2 2>&1 || true
      local deadline=$(($(now_ms) + (KILL_WAIT + 10) * 1000)) left
      while (($(now_ms) < deadline)); do
        left=$(sl squeue -h -o '%A' 2>/dev/null || echo x)
        [[ -z $left ]] && break
        sleep 0.1
      done
      [[ -z ${left:-} ]] || log "jobs still not finished after cancel: ${left//$'\n'/ }"
    fi
  fi
  local -a slurmds=()
  local f
  for f in "$RUN"/slurmd-*.pid; do [[ -e $f ]] && slurmds+=(slurmd "$f"); done
  ((${#slurmds[@]})) && stop_pids $((KILL_WAIT + 8)) "${slurmds[@]}"
  stop_pids 10 slurmctld "$RUN/slurmctld.pid"
  local pid
  for pid in $(leftover_stepds); do
    log "killing leftover slurmstepd pid $pid (holds files in $BASE)"
    kill -KILL "$pid" 2>/dev/null || true
  done
  stop_pids 5 munged "$RUN/munged.pid"
  for pid in $(leftover_job_procs "$ctld_port"); do
    log "killing orphaned job process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80))"
    kill -KILL "$pid" 2>/dev/null || true
  done
  unlink_etc
}

# The folder is ours if it is new/empty or carries our marker; never wipe anything else.
is_our_dir() {
  [[ -e $BASE/.slurm-local ]] || grep -qs '^# Generated by scripts/slurm-local.sh' "$CONF"
}
claim_dir() {
  if [[ -e $BASE ]] && ! is_our_dir; then
    [[ -d $BASE ]] || die "SLURM_LOCAL_DIR $BASE exists and is not a directory"
    [[ -z $(ls -A "$BASE" 2>/dev/null) ]] ||
      die "SLURM_LOCAL_DIR $BASE is not empty and not a slurm-local folder (no .slurm-local marker); refusing to use it"
  fi
  mkdir -p "$BASE"
  [[ -e $BASE/.slurm-local ]] || printf 'slurm-local folder (scripts/slurm-local.sh)\n' >"$BASE/.slurm-local"
}
lock() {
  claim_dir
  exec 9>>"$BASE/lock"
  if ! flock -n 9; then
    log "waiting for the lock on $BASE/lock (another start/stop is running)"
    flock -w "$LOCK_TIMEOUT" 9 || die "timed out after ${LOCK_TIMEOUT}s waiting for $BASE/lock"
  fi
}

cmd_stop() {
  if ! is_our_dir; then
    log "not running (no slurm-local folder at $BASE)"
    return 0
  fi
  lock
  if ! any_daemon_alive; then
    rm -f "$READY"
    unlink_etc
    log "not running ($(elapsed))"
    return 0
  fi
  stop_locked
  log "stopped ($(elapsed))"
}

# ------------------------------------------------------------------ start
dump_logs() {
  local f
  for f in "$LOGD/munged.log" "$LOGD/slurmctld.log" "$LOGD"/slurmd-*.log; do
    [[ -s $f ]] || continue
    log "---- last lines of $f"
    grep -v -e 'pmix' -e 'Could not open' -e 'No such file or directory' "$f" | tail -n 15 >&2 || true
  done
}
STARTED=0
on_start_exit() {
  local rc=$?
  if ((rc != 0 && STARTED)); then
    log "start failed; logs are in $LOGD"
    dump_logs
    stop_locked || true
  fi
}

wait_until() { # DEADLINE_MS DESCRIPTION COMMAND...  (checks that our daemons stay alive)
  local deadline=$1 what=$2; shift 2
  while :; do
    "$@" && return 0
    check_daemons_alive
    (($(now_ms) < deadline)) || die "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.05
  done
}
EXPECT_DAEMONS=()
check_daemons_alive() {
  local i
  for ((i = 0; i < ${#EXPECT_DAEMONS[@]}; i += 2)); do
    daemon_alive "${EXPECT_DAEMONS[i]}" "${EXPECT_DAEMONS[i + 1]}" ||
      die "${EXPECT_DAEMONS[i]} ($(basename "${EXPECT_DAEMONS[i + 1]}" .pid)) died or did not start"
  done
}

spawn() { # LOGFILE COMMAND...: daemonizing command with no stdio and no inherited fds
  local logfile=$1; shift
  "$@" </dev/null >>"$logfile" 2>&1 3>&- 9>&- || die "$1 failed to start (rc $?): see $logfile"
}

munge_ok() {
  [[ -S $MUNGE_SOCKET ]] || return 1
  munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1
}
nodes_ready() {
  local out line n=0
  out=$(SLURM_CONF=$CONF timeout 5 sinfo -h -N -o '%N %T' </dev/null 2>/dev/null) || return 1
  while read -r _ line; do
    case $line in # exact: a suffix such as idle* (not responding) is not ready
    idle | mixed | allocated | completing) n=$((n + 1)) ;;
    *) return 1 ;;
    esac
  done <<<"$out"
  ((n == NODES))
}
PROBE_IDS=()
probes_done() {
  local out id st ok=0
  out=$(SLURM_CONF=$CONF timeout 5 squeue -h -t all -j "$(IFS=,; echo "${PROBE_IDS[*]}")" -o '%i %T' </dev/null 2>/dev/null) || return 1
  while read -r id st; do
    case $st in
    COMPLETED) ok=$((ok + 1)) ;;
    PENDING | RUNNING | COMPLETING | CONFIGURING) ;;
    *) die "probe job $id ended in state $st" ;;
    esac
  done <<<"$out"
  ((ok == ${#PROBE_IDS[@]}))
}

cmd_start() {
  check_settings
  exec 3>&1 1>&2 # stdout is reserved for the exports
  lock
  if ! packages_installed; then
    ((AUTO_INSTALL)) || die "Slurm packages missing: run 'bash scripts/slurm-local.sh install'"
    log "Slurm packages missing: installing them first"
    cmd_install
  fi

  local newconf fingerprint
  newconf=$(gen_conf)
  fingerprint=$(printf '%s\n%s\nprobe=%s keep=%s\n' "$newconf" "$(slurmctld -V 2>/dev/null)" "$PROBE" "$KEEP_STATE" | sha256sum | cut -c1-16)

  # Fast path: up with the same settings.
  if [[ -r $READY && $(cat "$READY" 2>/dev/null) == "$fingerprint" ]] && all_daemons_alive &&
    [[ $(cat "$CONF" 2>/dev/null) == "$newconf" ]] && sl scontrol ping >/dev/null 2>&1; then
    link_etc
    log "already running ($NODES node(s), $BASE; $(elapsed))"
    print_exports
    return 0
  fi

  STARTED=1
  trap on_start_exit EXIT
  trap 'exit 130' INT TERM HUP # interrupted: still clean up what we started
  if any_daemon_alive; then
    log "running with other settings or unhealthy: restarting"
    stop_locked
  fi
  rm -f "$READY"

  # Fresh folder layout (state wiped unless SLURM_LOCAL_KEEP_STATE=1).
  rm -rf "${RUN:?}" "${LOGD:?}" "${MUNGE_DIR:?}" "${BASE:?}/spool" "${BASE:?}/etc" "${BASE:?}/tmp"
  ((KEEP_STATE)) || rm -rf "${BASE:?}/state"
  mkdir -p "$RUN" "$LOGD" "$BASE/etc" "$BASE/state" "$BASE/tmp" "$MUNGE_DIR"
  local n
  for ((n = 1; n <= NODES; n++)); do mkdir -p "$BASE/spool/node$n"; done
  chmod 755 "$BASE" "$MUNGE_DIR" # munged requires an accessible socket directory
  printf '%s\n' "$newconf" >"$CONF"

  if port_listening "$PORT"; then die "port $PORT is already in use (set SLURM_LOCAL_PORT)"; fi
  for ((n = 1; n <= NODES; n++)); do
    if port_listening $((PORT + n)); then die "port $((PORT + n)) (node$n) is already in use (set SLURM_LOCAL_PORT)"; fi
  done

  # munged: own key, socket, pid, log and seed.
  (umask 077 && head -c 1024 /dev/urandom >"$MUNGE_KEY")
  chmod 400 "$MUNGE_KEY"
  EXPECT_DAEMONS=()
  spawn "$LOGD/munged.log" munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" \
    --pid-file="$RUN/munged.pid" --log-file="$LOGD/munged.log" --seed-file="$MUNGE_DIR/munged.seed" --force
  local deadline=$(($(now_ms) + TIMEOUT * 1000))
  wait_until "$deadline" "munged pidfile" test -s "$RUN/munged.pid"
  EXPECT_DAEMONS=(munged "$RUN/munged.pid")
  wait_until "$deadline" "munged socket" munge_ok

  # slurmctld, then one slurmd per node.
  spawn "$LOGD/slurmctld.log" slurmctld -f "$CONF"
  wait_until "$deadline" "slurmctld pidfile" test -s "$RUN/slurmctld.pid"
  EXPECT_DAEMONS+=(slurmctld "$RUN/slurmctld.pid")
  for ((n = 1; n <= NODES; n++)); do
    spawn "$LOGD/slurmd-node$n.log" slurmd -N "node$n" -f "$CONF"
  done
  for ((n = 1; n <= NODES; n++)); do
    wait_until "$deadline" "slurmd node$n pidfile" test -s "$RUN/slurmd-node$n.pid"
    EXPECT_DAEMONS+=(slurmd "$RUN/slurmd-node$n.pid")
  done
  wait_until "$deadline" "slurmctld to listen on port $PORT" port_listening "$PORT"
  wait_until "$deadline" "nodes to be idle" nodes_ready
  log "daemons up, $NODES node(s) idle ($(elapsed))"

  # Probe: one tiny batch job per node must complete (the first scheduling pass comes ~3 s
  # after slurmctld starts; tests should never see that delay).
  if ((PROBE)); then
    PROBE_IDS=()
    local id
    for ((n = 1; n <= NODES; n++)); do
      id=$(sl sbatch --parsable -J slurm-local-probe -w "node$n" -D "$BASE/tmp" -o /dev/null --wrap true) ||
        die "sbatch of the probe job failed"
      PROBE_IDS+=("${id%%;*}")
    done
    wait_until "$deadline" "probe job(s) ${PROBE_IDS[*]} to complete" probes_done
    log "probe job(s) ${PROBE_IDS[*]} completed ($(elapsed))"
  fi

  printf '%s\n' "$fingerprint" >"$READY"
  STARTED=0
  trap - EXIT INT TERM HUP
  link_etc
  log "up: $NODES node(s) (node1..node$NODES, $CPUS CPUs each), dir $BASE, started in $(elapsed)"
  print_exports
}

# ----------------------------------------------------------------- status
cmd_status() {
  local out dead=() prog file node
  if [[ -r $CONF ]] && daemon_alive slurmctld "$RUN/slurmctld.pid" &&
    out=$(sl sinfo -N -o '%N %T %c %P' 2>&1); then
    daemon_alive munged "$RUN/munged.pid" || dead+=(munged)
    # shellcheck disable=SC2013 # node names have no spaces
    for node in $(sed -n 's/^NodeName=\([^ ]*\) .*/\1/p' "$CONF"); do
      daemon_alive slurmd "$RUN/slurmd-$node.pid" || dead+=("slurmd($node)")
    done
    if ((${#dead[@]})); then
      printf 'degraded: %s (SLURM_CONF=%s): not running: %s\n%s\n' "$BASE" "$CONF" "${dead[*]}" "$out"
      return 1
    fi
    printf 'up: %s (SLURM_CONF=%s)\n%s\n' "$BASE" "$CONF" "$out"
    return 0
  fi
  printf 'down: %s\n' "$BASE"
  return 1
}

# ------------------------------------------------- controller outage (tests)
# Stop only slurmctld (its state is kept; slurmd and running jobs go on), and start it
# again from that state: what a controller restart or failover looks like to a client.
cmd_ctld_stop() {
  is_our_dir || die "no slurm-local folder at $BASE"
  lock
  daemon_alive slurmctld "$RUN/slurmctld.pid" || { log "slurmctld is not running"; return 0; }
  stop_pids 10 slurmctld "$RUN/slurmctld.pid"
  log "slurmctld stopped; slurmd and jobs keep running ($(elapsed))"
}
ctld_answers() { sl scontrol ping >/dev/null 2>&1; }
cmd_ctld_start() {
  is_our_dir || die "no slurm-local folder at $BASE"
  exec 3>&1 1>&2
  lock
  [[ -r $CONF ]] || die "no config at $CONF: run start"
  NODES=$(grep -c '^NodeName=' "$CONF")
  if ! daemon_alive slurmctld "$RUN/slurmctld.pid"; then
    spawn "$LOGD/slurmctld.log" slurmctld -f "$CONF"
  fi
  local deadline=$(($(now_ms) + TIMEOUT * 1000))
  EXPECT_DAEMONS=()
  wait_until "$deadline" "slurmctld pidfile" test -s "$RUN/slurmctld.pid"
  EXPECT_DAEMONS=(slurmctld "$RUN/slurmctld.pid")
  wait_until "$deadline" "slurmctld to answer" ctld_answers
  wait_until "$deadline" "nodes to register again" nodes_ready
  log "slurmctld started again from its saved state ($(elapsed))"
  print_exports
}

usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2
}

case ${1:-} in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
ctld-stop) cmd_ctld_stop ;;
ctld-start) cmd_ctld_start ;;
-h | --help | help) usage ;;
*)
  usage
  exit 2
  ;;
esac
