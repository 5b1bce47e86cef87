#!/usr/bin/env bash
# A private 3-node MariaDB Galera cluster on loopback, for the tests, the
# benchmarks and CI. It never touches the shared MariaDB on port 3306: its own
# ports, its own data directories, its own config files (no /etc/mysql).
#
#   bash scripts/galera.sh start          # bootstrap node 1, join 2 and 3, wait until all are Synced
#   bash scripts/galera.sh stop           # stop every node, keep the data
#   bash scripts/galera.sh destroy        # stop and delete the data directories
#   bash scripts/galera.sh status         # one line per node: pid, state, cluster size
#   bash scripts/galera.sh urls           # the three mysql:// URLs, comma-separated
#   bash scripts/galera.sh pid N          # the server pid of node N (1-3)
#   bash scripts/galera.sh kill N         # SIGKILL node N
#   bash scripts/galera.sh freeze N       # SIGSTOP node N
#   bash scripts/galera.sh thaw N         # SIGCONT node N
#   bash scripts/galera.sh start-node N   # (re)start node N and wait until it is Synced
#
# Ports (override the bases with TESSERA_GALERA_SQL_PORT and
# TESSERA_GALERA_PEER_PORT): SQL 4306-4308; group communication 14567-14569,
# IST 14577-14579, SST 14587-14589. Data: target/galera/node<N> (override with
# TESSERA_GALERA_DIR). The server settings Tessera relies on are explained in
# docs/DISTRIBUTED.md; this script writes them into each node's my.cnf.
set -euo pipefail
cd "$(dirname "$0")/.."

SQL_BASE="${TESSERA_GALERA_SQL_PORT:-4306}"
PEER_BASE="${TESSERA_GALERA_PEER_PORT:-14567}"
DIR="${TESSERA_GALERA_DIR:-$PWD/target/galera}"
PROVIDER=/usr/lib/galera/libgalera_smm.so
MARIADBD=/usr/sbin/mariadbd
NODES=(1 2 3)
# The account the servers run as when this script runs as root.
RUN_AS="${TESSERA_GALERA_USER:-mysql}"

run_user() {
  if [ "$(id -u)" -eq 0 ]; then echo "$RUN_AS"; else id -un; fi
}

die() {
  echo "galera.sh: $*" >&2
  exit 1
}

sql_port() { echo $((SQL_BASE + $1 - 1)); }
gcomm_port() { echo $((PEER_BASE + $1 - 1)); }
ist_port() { echo $((PEER_BASE + 10 + $1 - 1)); }
sst_port() { echo $((PEER_BASE + 20 + $1 - 1)); }
node_dir() { echo "$DIR/node$1"; }

# Installs the server and the Galera provider when they are missing (CI runs
# as root on a fresh machine); fails loudly when that is impossible.
ensure_installed() {
  local missing=()
  [ -x "$MARIADBD" ] || missing+=(mariadb-server)
  [ -f "$PROVIDER" ] || missing+=(galera-4)
  [ "$(id -u)" -ne 0 ] || id "$RUN_AS" >/dev/null 2>&1 || missing+=(mariadb-server)
  command -v rsync >/dev/null || missing+=(rsync)
  command -v mariadb-install-db >/dev/null || missing+=(mariadb-server)
  command -v mariadb >/dev/null || missing+=(mariadb-client)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    die "missing ${missing[*]} and cannot install them (needs root and apt-get)"
  fi
  echo "galera.sh: installing ${missing[*]}" >&2
  # The package's own service must not start and grab port 3306's data.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  local ok=1
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; } ||
    ok=0
  rm -f /usr/sbin/policy-rc.d
  [ "$ok" -eq 1 ] || die "apt-get could not install ${missing[*]}"
  [ -x "$MARIADBD" ] && [ -f "$PROVIDER" ] || die "installed ${missing[*]} but $MARIADBD or $PROVIDER is still missing"
}

write_config() {
  local n=$1 d
  d=$(node_dir "$n")
  mkdir -p "$d/data"
  [ "$(id -u)" -eq 0 ] && chown -R "$RUN_AS" "$d"
  local members=""
  for m in "${NODES[@]}"; do
    members+="${members:+,}127.0.0.1:$(gcomm_port "$m")"
  done
  cat >"$d/my.cnf" <<EOF
# Written by scripts/galera.sh; see docs/DISTRIBUTED.md for why each setting.
[mysqld]
datadir=$d/data
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/error.log
port=$(sql_port "$n")
bind-address=127.0.0.1
skip-name-resolve
character-set-server=utf8mb4
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
max_connections=300

# Settings Tessera relies on (checked by tessera-sqlx when it connects).
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_flush_log_at_trx_commit=1
wsrep_sync_wait=3

wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=tessera_galera_test
wsrep_cluster_address=gcomm://$members
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:$(gcomm_port "$n")
wsrep_node_incoming_address=127.0.0.1:$(sql_port "$n")
wsrep_sst_receive_address=127.0.0.1:$(sst_port "$n")
wsrep_sst_method=rsync
wsrep_slave_threads=2
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$n");ist.recv_addr=127.0.0.1:$(ist_port "$n");gcache.size=128M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT6S"
EOF
}

client() {
  local n=$1
  shift
  mariadb --no-defaults --socket="$(node_dir "$n")/mysqld.sock" -uroot --batch --skip-column-names "$@"
}

# The server's pid: from its pid file once it is up, from the pid launch()
# recorded until then.
pid_of() {
  local d f p
  d=$(node_dir "$1")
  for f in "$d/mysqld.pid" "$d/launch.pid"; do
    [ -s "$f" ] || continue
    p=$(cat "$f")
    if kill -0 "$p" 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

state_of() {
  client "$1" -e "SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | awk '{print $2}'
}

wait_synced() {
  local n=$1 limit=${2:-180}
  for _ in $(seq 1 "$limit"); do
    if ! pid_of "$n" >/dev/null; then
      tail -30 "$(node_dir "$n")/error.log" >&2 || true
      die "node $n exited while starting (log: $(node_dir "$n")/error.log)"
    fi
    if [ "$(state_of "$n")" = "Synced" ] &&
      [ "$(client "$n" -e "SHOW GLOBAL STATUS LIKE 'wsrep_ready'" 2>/dev/null | awk '{print $2}')" = "ON" ]; then
      return 0
    fi
    sleep 1
  done
  tail -30 "$(node_dir "$n")/error.log" >&2 || true
  die "node $n not Synced after ${limit} s (log: $(node_dir "$n")/error.log)"
}

launch() {
  local n=$1
  shift
  local d user=()
  d=$(node_dir "$n")
  write_config "$n"
  if [ "$(id -u)" -eq 0 ]; then
    # Not as root: the rsync daemon of a joining node's state transfer would
    # then drop to "nobody" and fail to write the data directory.
    chown -R "$RUN_AS" "$DIR"
    user=(--user="$RUN_AS")
  fi
  rm -f "$d/mysqld.pid" "$d/launch.pid"
  # setsid: the server outlives this script and ignores its terminal (run
  # from a script, setsid execs the server itself, so $! is its pid).
  setsid "$MARIADBD" --defaults-file="$d/my.cnf" "${user[@]}" "$@" </dev/null >>"$d/console.log" 2>&1 &
  echo $! >"$d/launch.pid"
}

any_running() {
  for n in "${NODES[@]}"; do
    pid_of "$n" >/dev/null && return 0
  done
  return 1
}

init_node() {
  local n=$1 d
  d=$(node_dir "$n")
  [ -d "$d/data/mysql" ] && return 0
  write_config "$n"
  mariadb-install-db --defaults-file="$d/my.cnf" --auth-root-authentication-method=normal \
    --skip-test-db --user="$(run_user)" >"$d/install.log" 2>&1 ||
    { cat "$d/install.log" >&2; die "mariadb-install-db failed for node $n"; }
}

start_node() {
  local n=$1
  if pid_of "$n" >/dev/null; then
    wait_synced "$n"
    return 0
  fi
  init_node "$n"
  launch "$n" $(recovered_position "$n")
  wait_synced "$n"
}

# After a crash (SIGKILL) the node's saved position is unknown (seqno -1 in
# grastate.dat) and it would ask for a full state transfer, which blocks the
# donor's writes while it runs. Recover the position from InnoDB first, as the
# packaged galera_recovery does, so that the node rejoins by an incremental
# transfer (IST) from the donors' gcache instead.
recovered_position() {
  local n=$1 d log user=()
  d=$(node_dir "$n")
  [ -f "$d/data/grastate.dat" ] || return 0
  grep -q '^seqno: *-1' "$d/data/grastate.dat" || return 0
  log="$d/recover.log"
  [ "$(id -u)" -eq 0 ] && user=(--user="$RUN_AS")
  rm -f "$log"
  "$MARIADBD" --defaults-file="$d/my.cnf" "${user[@]}" --wsrep-recover --log-error="$log" >/dev/null 2>&1 || return 0
  local pos
  pos=$(sed -n 's/.*WSREP: Recovered position: *//p' "$log" | tail -1)
  [ -n "$pos" ] && echo "--wsrep-start-position=$pos"
  return 0
}

cmd_start() {
  ensure_installed
  for n in "${NODES[@]}"; do
    local p
    p=$(sql_port "$n")
    if ! pid_of "$n" >/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "port $p is taken by another process (not a node of this cluster)"
    fi
  done
  if ! any_running; then
    # Nothing runs: bootstrap a new primary component from node 1. The node
    # with the most recent state must bootstrap; after a clean stop every node
    # has the same state, so node 1 may be told it is safe to.
    init_node 1
    local grastate
    grastate="$(node_dir 1)/data/grastate.dat"
    [ -f "$grastate" ] && sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$grastate"
    launch 1 --wsrep-new-cluster
    wait_synced 1
    client 1 -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; CREATE DATABASE IF NOT EXISTS test;"
  fi
  for n in "${NODES[@]}"; do
    start_node "$n"
  done
  cmd_status
}

cmd_stop() {
  # Joiners first, node 1 last, so that node 1 has the latest state and can
  # bootstrap the next start.
  for n in 3 2 1; do
    local p
    if p=$(pid_of "$n"); then
      kill -CONT "$p" 2>/dev/null || true
      kill -TERM "$p" 2>/dev/null || true
      for _ in $(seq 1 60); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.5
      done
      if kill -0 "$p" 2>/dev/null; then
        echo "galera.sh: node $n did not stop in 30 s, killing it" >&2
        kill -KILL "$p" 2>/dev/null || true
      fi
    fi
  done
}

cmd_status() {
  for n in "${NODES[@]}"; do
    local p
    if p=$(pid_of "$n"); then
      local size
      size=$(client "$n" --connect-timeout=2 -e "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'" 2>/dev/null | awk '{print $2}') || size=""
      if [ -n "$size" ]; then
        echo "node $n: pid $p, port $(sql_port "$n"), $(state_of "$n"), cluster size $size"
      else
        echo "node $n: pid $p, port $(sql_port "$n"), not answering"
      fi
    else
      echo "node $n: not running (port $(sql_port "$n"))"
    fi
  done
}

cmd_urls() {
  local urls=""
  for n in "${NODES[@]}"; do
    urls+="${urls:+,}mysql://root@127.0.0.1:$(sql_port "$n")/test"
  done
  echo "$urls"
}

node_arg() {
  case "${1:-}" in
    1 | 2 | 3) echo "$1" ;;
    *) die "expected a node number 1-3, got '${1:-}'" ;;
  esac
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  destroy)
    cmd_stop
    rm -rf "$DIR"
    ;;
  status) cmd_status ;;
  urls) cmd_urls ;;
  pid) pid_of "$(node_arg "${2:-}")" || die "node ${2:-} is not running" ;;
  kill)
    n=$(node_arg "${2:-}")
    p=$(pid_of "$n") || die "node $n is not running"
    kill -KILL "$p"
    # Return once it is gone, so that a start-node right after does not find it.
    for _ in $(seq 1 100); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    ;;
  freeze) kill -STOP "$(pid_of "$(node_arg "${2:-}")")" ;;
  thaw) kill -CONT "$(pid_of "$(node_arg "${2:-}")")" ;;
  start-node) start_node "$(node_arg "${2:-}")" ;;
  *)
    sed -n '2,22p' "$0" >&2
    exit 2
    ;;
esac
