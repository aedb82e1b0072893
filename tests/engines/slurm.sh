#!/usr/bin/env bash
# tests/engines/slurm.sh - a real single-node SLURM cluster for the executor conformance suite
# (tests/executors/), on a Debian/Ubuntu root shell without systemd (CI VMs, containers).
# Adapted from the probe in ../shared/reviews/2026-12-slurm-probe.md (tested there).
#
#   tests/engines/slurm.sh install   apt-get install slurm-wlm munge (+ slurmdbd, mariadb-server-core)
#   tests/engines/slurm.sh start     munge key, munged, MariaDB + slurmdbd, slurm.conf/gres.conf,
#                                    slurmctld, slurmd; waits for the node (idempotent)
#   tests/engines/slurm.sh stop      cancel all jobs, stop the daemons by PID (pidfiles, comm checked)
#   tests/engines/slurm.sh status    daemon PIDs, sinfo, squeue
#
# Environment:
#   FAKE_GPUS=N     N fake GPUs (default 2): character devices cloned from /dev/null (mknod c 1 3) in
#                   gres.conf with AutoDetect=off, so SLURM sets CUDA_VISIBLE_DEVICES per job
#   WITH_DBD=0      no accounting (default 1: submitit needs sacct to notice a job that died
#                   without writing its result; without it, it waits forever)
#   CLEAN=1         wipe slurmctld/slurmd state before starting
#   AUTO_INSTALL=1  install the packages from "start" when missing
set -euo pipefail

CONF_DIR=/etc/slurm
CTLD_SPOOL=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
MUNGE_RUN=/run/munge
MUNGE_KEY=/etc/munge/munge.key
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
MUNGED_PID=$MUNGE_RUN/munged.pid
FAKE_GPUS=${FAKE_GPUS:-2}
WITH_DBD=${WITH_DBD:-1}
DBD_PID=$RUN_DIR/slurmdbd.pid
MYSQL_DIR=/var/lib/ragline-slurm/mysql
MYSQL_RUN=/run/mysqld                 # libmariadb's default socket dir, so slurmdbd finds the socket
MYSQL_PID=$MYSQL_RUN/mysqld.pid
PKGS="slurm-wlm munge"
DBD_PKGS="slurmdbd mariadb-server-core mariadb-client-core"   # not mariadb-server: it pulls in a perl upgrade
NODE=$(hostname -s)
CLUSTER=${CLUSTER:-local}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log() { printf '[slurm.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# alive PIDFILE COMM -> prints pid and returns 0 if the pidfile names a live process with that comm
alive() {
  local pf=$1 comm=$2 pid
  [ -s "$pf" ] || return 1
  pid=$(tr -dc 0-9 < "$pf")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$comm" ] || return 1
  echo "$pid"
}

# wait_for SECONDS CMD... -> retry CMD every 0.2 s
wait_for() {
  local limit=$1; shift
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.2
  done
}

# stop_pid PIDFILE COMM -> SIGTERM, wait up to 15 s, then SIGKILL; only that PID
stop_pid() {
  local pf=$1 comm=$2 pid
  if ! pid=$(alive "$pf" "$comm"); then log "$comm not running"; rm -f "$pf"; return 0; fi
  local t0=$SECONDS
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  if [ -d "/proc/$pid" ]; then log "$comm pid $pid ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" || true; fi
  log "stopped $comm (pid $pid, $((SECONDS - t0))s)"
  rm -f "$pf"
}

do_install() {
  local pkgs=$PKGS
  [ "$WITH_DBD" = 1 ] && pkgs="$pkgs $DBD_PKGS"
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
     && command -v sbatch >/dev/null && { [ "$WITH_DBD" != 1 ] || command -v slurmdbd >/dev/null; }; then
    log "packages already installed"; return 0
  fi
  log "installing $pkgs"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs
}

start_munge() {
  if [ ! -s "$MUNGE_KEY" ]; then
    log "creating munge key"
    install -d -m 700 "$(dirname "$MUNGE_KEY")"
    mungekey --create --keyfile="$MUNGE_KEY" 2>/dev/null \
      || dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
  fi
  local pid
  if pid=$(alive "$MUNGED_PID" munged); then log "munged already running (pid $pid)"; return 0; fi
  if getent passwd munge >/dev/null; then
    chown -R munge:munge "$(dirname "$MUNGE_KEY")"; chmod 600 "$MUNGE_KEY"
    install -d -o munge -g munge -m 755 "$MUNGE_RUN"
    install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
    runuser -u munge -- munged            # daemonizes, writes $MUNGED_PID
  else
    install -d -m 755 "$MUNGE_RUN"; install -d -m 700 /var/lib/munge /var/log/munge
    chown -R root:root "$(dirname "$MUNGE_KEY")"; chmod 600 "$MUNGE_KEY"
    munged --force                        # as root: --force tolerates ownership/permission warnings
  fi
  wait_for 10 bash -c 'munge -n | unmunge' || die "munge does not work (see /var/log/munge/munged.log)"
  log "munged started (pid $(cat "$MUNGED_PID"))"
}

make_fake_gpus() {
  # Slurm's gres/gpu requires File= to be a character/block device (regular files are rejected and
  # Count= without File= reports 0 GPUs); clones of /dev/null (c 1 3) are accepted.
  FAKE_GPU_FILES=""
  [ "$FAKE_GPUS" -gt 0 ] || return 0
  install -d -m 755 "$RUN_DIR"
  local i ok=1
  for ((i = 0; i < FAKE_GPUS; i++)); do
    local f=$RUN_DIR/fakegpu$i
    [ -c "$f" ] || { rm -f "$f"; mknod -m 666 "$f" c 1 3 2>/dev/null || { ok=0; break; }; }
  done
  if [ "$ok" = 1 ]; then
    FAKE_GPU_FILES="$RUN_DIR/fakegpu[0-$((FAKE_GPUS - 1))]"
  else  # no CAP_MKNOD: use distinct existing char devices (at most 5)
    local devs=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)
    [ "$FAKE_GPUS" -le ${#devs[@]} ] || die "mknod failed and FAKE_GPUS>${#devs[@]}"
    FAKE_GPU_FILES=$(IFS=,; echo "${devs[*]:0:$FAKE_GPUS}")
  fi
}

write_conf() {
  local hw cpus boards sockets cores threads mem
  hw=$(slurmd -C | head -1)   # NodeName=.. CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..
  field() { sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
  cpus=$(field CPUs); boards=$(field Boards); sockets=$(field SocketsPerBoard)
  cores=$(field CoresPerSocket); threads=$(field ThreadsPerCore); mem=$(field RealMemory)
  [ -n "$cpus" ] && [ -n "$mem" ] || die "could not parse 'slurmd -C': $hw"
  make_fake_gpus
  local gres_line="" node_gres=""
  if [ -n "$FAKE_GPU_FILES" ]; then gres_line="GresTypes=gpu"; node_gres="Gres=gpu:$FAKE_GPUS"; fi
  local acct_lines="JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none"
  if [ "$WITH_DBD" = 1 ]; then
    acct_lines="JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost"
    # gres TRES accounting is only allowed with slurmdbd ("slurmdbd is required to run with TRES gres/gpu")
    if [ -n "$FAKE_GPU_FILES" ]; then acct_lines="$acct_lines
AccountingStorageTRES=gres/gpu"; fi
  fi
  install -d -m 755 "$CONF_DIR" "$CTLD_SPOOL" "$SLURMD_SPOOL" "$LOG_DIR" "$RUN_DIR"
  cat > "$CONF_DIR/slurm.conf.new" <<EOF
# generated by tests/engines/slurm.sh
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
$acct_lines
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
# default batch_sched_delay=3 makes pending jobs wait for a 3 s scheduling tick
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$(( mem / cpus ))
ReturnToService=2
# reject impossible requests at submit time instead of leaving them PENDING (PartitionConfig) forever
EnforcePartLimits=ALL
KillWait=5
StateSaveLocation=$CTLD_SPOOL
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$gres_line
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus Boards=$boards SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem $node_gres State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
  if [ -n "$FAKE_GPU_FILES" ]; then
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s\n' "$NODE" "$FAKE_GPU_FILES" > "$CONF_DIR/gres.conf"
  else
    rm -f "$CONF_DIR/gres.conf"
  fi
}

start_dbd() {
  local pid
  install -d -m 755 "$MYSQL_RUN"
  if ! pid=$(alive "$MYSQL_PID" mariadbd); then
    if [ ! -d "$MYSQL_DIR/mysql" ]; then
      log "initialising MariaDB datadir $MYSQL_DIR"
      install -d -m 700 "$MYSQL_DIR"
      mariadb-install-db --no-defaults --datadir="$MYSQL_DIR" --user=root \
        --auth-root-authentication-method=socket --skip-test-db > "$LOG_DIR/mariadb-install.log" 2>&1 \
        || die "mariadb-install-db failed; see $LOG_DIR/mariadb-install.log"
    fi
    setsid mariadbd --no-defaults --datadir="$MYSQL_DIR" --user=root --skip-networking \
      --socket="$MYSQL_RUN/mysqld.sock" --pid-file="$MYSQL_PID" --log-error="$LOG_DIR/mariadb.log" \
      --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    wait_for 30 mariadb --socket="$MYSQL_RUN/mysqld.sock" -e 'select 1' \
      || die "MariaDB did not start; see $LOG_DIR/mariadb.log"
    wait_for 10 test -s "$MYSQL_PID"
    log "mariadbd started (pid $(cat "$MYSQL_PID"))"
  else
    log "mariadbd already running (pid $pid)"
  fi
  if ! pid=$(alive "$DBD_PID" slurmdbd); then
    cat > "$CONF_DIR/slurmdbd.conf" <<DBDEOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$DBD_PID
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
DBDEOF
    chmod 600 "$CONF_DIR/slurmdbd.conf"          # slurmdbd refuses a slurmdbd.conf readable by others
    slurmdbd || die "slurmdbd failed: $(tail -3 "$LOG_DIR/slurmdbd.log")"
    wait_for 30 sacctmgr -n show cluster || die "slurmdbd not answering; see $LOG_DIR/slurmdbd.log"
    log "slurmdbd started (pid $(cat "$DBD_PID"))"
  else
    log "slurmdbd already running (pid $pid)"
  fi
  if [ -z "$(sacctmgr -n -P show cluster "$CLUSTER" format=cluster)" ]; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null && log "registered cluster $CLUSTER in slurmdbd"
  fi
}

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }
node_ready() { case "$(node_state)" in idle|mixed|allocated|completing) return 0;; *) return 1;; esac; }

do_start() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  if ! command -v slurmctld >/dev/null || { [ "$WITH_DBD" = 1 ] && ! command -v slurmdbd >/dev/null; }; then
    [ "${AUTO_INSTALL:-0}" = 1 ] || die "packages missing (run: WITH_DBD=$WITH_DBD $0 install, or set AUTO_INSTALL=1)"
    do_install
  fi
  start_munge
  local ctld slurmd_pid
  ctld=$(alive "$CTLD_PID" slurmctld || true); slurmd_pid=$(alive "$SLURMD_PID" slurmd || true)
  if [ -n "$ctld" ] && [ -n "$slurmd_pid" ]; then
    log "slurmctld ($ctld) and slurmd ($slurmd_pid) already running"
  else
    write_conf
    if [ "${CLEAN:-0}" = 1 ] && [ -z "$ctld" ] && [ -z "$slurmd_pid" ]; then
      log "CLEAN=1: wiping $CTLD_SPOOL and $SLURMD_SPOOL"
      rm -rf "${CTLD_SPOOL:?}"/* "${SLURMD_SPOOL:?}"/*
    fi
    if [ -f "$CTLD_SPOOL/clustername" ] && [ "$(cat "$CTLD_SPOOL/clustername")" != "$CLUSTER" ]; then
      # slurmctld refuses to start ("CLUSTER NAME MISMATCH") on state from another ClusterName
      log "state in $CTLD_SPOOL belongs to cluster '$(cat "$CTLD_SPOOL/clustername")': wiping it"
      rm -rf "${CTLD_SPOOL:?}"/*
    fi
    if [ "$WITH_DBD" = 1 ]; then start_dbd; fi
    if [ -z "$ctld" ]; then
      slurmctld -i || die "slurmctld failed: $(tail -3 "$LOG_DIR/slurmctld.log")"  # daemonizes
      wait_for 20 scontrol ping || die "slurmctld not responding; see $LOG_DIR/slurmctld.log"
      log "slurmctld started (pid $(cat "$CTLD_PID"))"
    fi
    if [ -z "$slurmd_pid" ]; then
      slurmd || die "slurmd failed: $(tail -3 "$LOG_DIR/slurmd.log")"               # daemonizes
      wait_for 10 test -s "$SLURMD_PID" || die "slurmd did not start; see $LOG_DIR/slurmd.log"
      log "slurmd started (pid $(cat "$SLURMD_PID"))"
    fi
  fi
  if ! wait_for 20 node_ready; then
    log "node state '$(node_state)', trying to resume it"
    scontrol update nodename="$NODE" state=resume 2>/dev/null || true
    wait_for 10 node_ready || die "node not ready: $(scontrol show node "$NODE" | grep -E 'State|Reason')"
  fi
  sinfo
}

do_stop() {
  if alive "$CTLD_PID" slurmctld >/dev/null; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      log "cancelling jobs: $jobs"
      scancel $jobs 2>/dev/null || true
      wait_for 20 bash -c '[ -z "$(squeue -h -o %A)" ]' || log "jobs still listed: $(squeue -h -o '%A %T' | tr '\n' ' ')"
    fi
  fi
  stop_pid "$SLURMD_PID" slurmd
  stop_pid "$CTLD_PID" slurmctld
  if [ "$WITH_DBD" = 1 ] || alive "$DBD_PID" slurmdbd >/dev/null || alive "$MYSQL_PID" mariadbd >/dev/null; then
    stop_pid "$DBD_PID" slurmdbd
    stop_pid "$MYSQL_PID" mariadbd
  fi
  stop_pid "$MUNGED_PID" munged
  local p left=""
  for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] && left+=" ${p#/proc/}"; done
  [ -z "$left" ] || log "WARNING: slurmstepd processes still alive (pids:$left)"
}

do_status() {
  local pid d
  for d in "munged:$MUNGED_PID" "mariadbd:$MYSQL_PID" "slurmdbd:$DBD_PID" "slurmctld:$CTLD_PID" "slurmd:$SLURMD_PID"; do
    if pid=$(alive "${d#*:}" "${d%%:*}"); then echo "${d%%:*}: running (pid $pid)"; else echo "${d%%:*}: stopped"; fi
  done
  if alive "$CTLD_PID" slurmctld >/dev/null; then sinfo -N -o '%N %T %c %m %G'; squeue; fi
}

case "${1:-}" in
  install) do_install ;;
  start)   do_start ;;
  stop)    do_stop ;;
  restart) do_stop; do_start ;;
  status)  do_status ;;
  *) echo "usage: $0 {install|start|stop|restart|status}" >&2; exit 2 ;;
esac
