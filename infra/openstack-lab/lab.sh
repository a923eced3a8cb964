#!/usr/bin/env bash
# CityOps OpenStack lab: a real OpenStack Zed control plane (Debian bookworm
# packages) on 127.0.0.1, with fake compute/volume backends. No systemd: each
# service is started here in its own session, with its PID and log in $STATE.
#   lab.sh install | up | down | status | env
# See docs/openstack-lab.md for what it is, what it costs and its limits.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${CITYOPS_LAB_STATE:-/var/lib/cityops-openstack-lab}
ETC=$STATE/etc RUN=$STATE/run LOGDIR=$STATE/log
PYLIB=$HERE/pylib
PY=/usr/bin/python3   # the services run on Debian's python, never a venv's
TIMEOUT=${CITYOPS_LAB_TIMEOUT:-300}
LAB_HOST=cityops-lab  # nova/cinder host name, also the resource provider's
# fake hypervisor size (used by configure.sh)
# shellcheck disable=SC2034
LAB_VCPUS=${CITYOPS_LAB_VCPUS:-16} LAB_RAM_MB=${CITYOPS_LAB_RAM_MB:-32768}
LAB_DISK_GB=${CITYOPS_LAB_DISK_GB:-500}

# Ports: the usual ones shifted by 20000 (below Linux's ephemeral range), so a
# MariaDB, RabbitMQ or dev server the user already runs is never in the way.
B=${CITYOPS_LAB_PORT_BASE:-20000}
P_MYSQL=$((B + 3306)) P_AMQP=$((B + 5673)) P_DIST=$((B + 5674)) P_EPMD=$((B + 4369))
P_KEYSTONE=$((B + 5000)) P_NOVA=$((B + 8774)) P_PLACEMENT=$((B + 8778))
P_GLANCE=$((B + 9292)) P_NEUTRON=$((B + 9696)) P_CINDER=$((B + 8776))
URL_KEYSTONE=http://127.0.0.1:$P_KEYSTONE URL_GLANCE=http://127.0.0.1:$P_GLANCE

# Start order; `down` stops them in reverse.
SERVICES=(epmd rabbitmq mariadb keystone placement glance-api neutron-server nova-api
  nova-conductor nova-scheduler cinder-api cinder-scheduler cinder-volume nova-compute)

log() { echo "openstack-lab: $*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s; }

# --- processes --------------------------------------------------------------
# A pidfile holds "PID STARTTIME": the start time (field 22 of /proc/PID/stat)
# guards against a recycled PID, and the state field against zombies, which
# PID 1 on these machines reaps slowly (kill -0 succeeds on them).
pid_alive() {
  local pid start stat
  [ -f "$RUN/$1.pid" ] && read -r pid start <"$RUN/$1.pid" || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # drop "PID (comm) ": comm may contain spaces
  # shellcheck disable=SC2086
  set -- $stat       # $1 = state, ${20} = starttime
  [ "$1" != Z ] && [ "$1" != X ] && [ "${20}" = "$start" ]
}

# start NAME CMD...: run CMD in a new session (so `down` can signal all its
# workers at once) with a clean environment: no venv, no PYTHONPATH of the
# caller, no http proxy (everything is on loopback).
start() {
  local name=$1 extra=("${SVC_ENV[@]}"); shift
  SVC_ENV=()
  pid_alive "$name" && return 0
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME="$STATE/home" \
    PYTHONPATH="$PYLIB" "${extra[@]}" setsid "$@" >>"$LOGDIR/$name.log" 2>&1 </dev/null 9>&- &
  local pid=$! stat
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || die "$name exited at once (see $LOGDIR/$name.log)"
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo "$pid ${20}" >"$RUN/$name.pid"
}
SVC_ENV=()

stop() {
  local name=$1 pid
  pid_alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  read -r pid _ <"$RUN/$name.pid"
  kill -TERM -- "-$pid" 2>/dev/null || true
}

wait_stopped() {  # wait_stopped SECONDS NAME...: then SIGKILL what is left
  local deadline=$(($(now) + $1)) name pid left; shift
  while :; do
    left=()
    for name in "$@"; do pid_alive "$name" && left+=("$name"); done
    [ ${#left[@]} -eq 0 ] && break
    if [ "$(now)" -ge "$deadline" ]; then
      for name in "${left[@]}"; do
        read -r pid _ <"$RUN/$name.pid"; log "killing $name"; kill -KILL -- "-$pid" 2>/dev/null || true
      done
      break
    fi
    sleep 0.5
  done
  for name in "$@"; do rm -f "$RUN/$name.pid"; done
}

py() { env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$STATE/home" PYTHONPATH="$PYLIB" "$@"; }
launch() { py "$PY" -m cityops_lab.launch "$@"; }

# wait_for WHAT CMD...: poll CMD until it succeeds, up to the deadline.
wait_for() {
  local what=$1 deadline=$(($(now) + TIMEOUT)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(now)" -lt "$deadline" ] || die "$what not ready after ${TIMEOUT}s (logs: $LOGDIR)"
    sleep 0.5
  done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
mysql_up() { mariadb-admin --defaults-file="$ETC/my.cnf" -uroot ping; }
sql() { mariadb --defaults-file="$ETC/my.cnf" -uroot -e "$1"; }

# --- state ------------------------------------------------------------------
load_secrets() {
  mkdir -p "$STATE" "$RUN" "$LOGDIR" "$STATE/home"
  chmod 700 "$STATE"
  if [ ! -s "$STATE/secrets.env" ]; then
    # random per state dir: the lab's ports are reachable by any local user
    local k; (umask 077; for k in DB_PASS RABBIT_PASS ADMIN_PASS SERVICE_PASS; do
      echo "$k=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"; done >"$STATE/secrets.env")
  fi
  # shellcheck disable=SC1091
  . "$STATE/secrets.env"
}

# labctl (cityops_lab/labctl.py) gets its settings through LAB_* variables.
labctl() {
  py LAB_CLOUDS="$STATE/clouds.yaml" LAB_SERVICE_PASS="$SERVICE_PASS" LAB_STATE="$STATE" \
    LAB_HOST=$LAB_HOST LAB_DB_PORT=$P_MYSQL LAB_DB_PASS="$DB_PASS" \
    LAB_URL_NOVA=http://127.0.0.1:$P_NOVA/v2.1 LAB_URL_PLACEMENT=http://127.0.0.1:$P_PLACEMENT \
    LAB_URL_GLANCE=$URL_GLANCE LAB_URL_NEUTRON=http://127.0.0.1:$P_NEUTRON \
    LAB_URL_CINDER="http://127.0.0.1:$P_CINDER/v3/%(project_id)s" \
    "$PY" -m cityops_lab.labctl "$@"
}

# --- one-time database setup ------------------------------------------------
keystone_setup() {
  local k=(py /usr/bin/keystone-manage --config-file "$ETC/keystone.conf")
  "${k[@]}" db_sync
  "${k[@]}" fernet_setup --keystone-user root --keystone-group root
  "${k[@]}" credential_setup --keystone-user root --keystone-group root
  "${k[@]}" bootstrap --bootstrap-password "$ADMIN_PASS" --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$URL_KEYSTONE/v3" --bootstrap-internal-url "$URL_KEYSTONE/v3" \
    --bootstrap-public-url "$URL_KEYSTONE/v3"
}
nova_setup() {
  local n=(launch nova-manage --config-file "$ETC/nova.conf")
  "${n[@]}" api_db sync
  "${n[@]}" cell_v2 map_cell0 --database_connection "$(db_url nova_cell0)"
  "${n[@]}" cell_v2 create_cell --name cell1
  "${n[@]}" db sync  # cell1 and cell0
}

db_sync() {
  [ -f "$STATE/.db-synced" ] && return 0
  local db pids=() names=() i rc=0
  for db in keystone placement glance neutron nova_api nova nova_cell0 cinder; do
    sql "CREATE DATABASE IF NOT EXISTS $db;"
  done
  sql "CREATE USER IF NOT EXISTS 'openstack'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
       GRANT ALL PRIVILEGES ON *.* TO 'openstack'@'127.0.0.1';"
  mkdir -p "$STATE/keystone/fernet-keys" "$STATE/keystone/credential-keys"
  chmod -R go-rwx "$STATE/keystone"  # keystone warns about readable keys
  # The schemas are independent: sync them side by side (mostly Python
  # start-up and alembic, so even two cores gain from it). Each chain runs in
  # its own subshell under set -e: its first failing step ends it.
  run_bg() { names+=("$1"); shift; ( set -e; "$@" ) >"$LOGDIR/dbsync-${names[-1]}.log" 2>&1 & pids+=($!); }
  run_bg keystone keystone_setup
  run_bg nova nova_setup
  run_bg placement py /usr/bin/placement-manage --config-file "$ETC/placement.conf" db sync
  run_bg glance launch glance-manage --config-file "$ETC/glance-api.conf" db_sync
  run_bg neutron launch neutron-db-manage --config-file "$ETC/neutron.conf" upgrade heads
  run_bg cinder launch cinder-manage --config-file "$ETC/cinder.conf" db sync
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" && continue
    rc=1; log "db sync of ${names[$i]} failed:"; tail -5 "$LOGDIR/dbsync-${names[$i]}.log" >&2
  done
  [ $rc -eq 0 ] || die "database setup failed"
  touch "$STATE/.db-synced"
}

# uwsgi serving one WSGI app on 127.0.0.1:PORT; --lazy-apps loads the app in
# each worker after the fork (nova-api monkey-patches eventlet on import).
# uwsgi's plain http-socket closes every connection after the response:
# "Connection: close" tells clients so, instead of a reset on their next request.
uwsgi_start() {  # uwsgi_start NAME PORT PROCESSES THREADS APP-ARGS...
  local name=$1 port=$2 procs=$3 threads=$4; shift 4
  start "$name" uwsgi --plugin python3 --http-socket "127.0.0.1:$port" --master \
    --die-on-term --need-app --lazy-apps --processes "$procs" --threads "$threads" \
    --buffer-size 65535 --add-header "Connection: close" --pythonpath "$PYLIB" "$@"
}

# up and down take turns (make test and make demo may both call up); the
# services are started with fd 9 closed so they never hold this lock.
lock_state() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w "$TIMEOUT" 9 || die "another lab.sh up/down holds $STATE/.lock"
}

all_alive() {
  local name
  for name in "${SERVICES[@]}"; do pid_alive "$name" || return 1; done
}

# --- commands ---------------------------------------------------------------
cmd_install() { bash "$HERE/install.sh"; }

cmd_up() {
  local t0; t0=$(now)
  [ "$(id -u)" -eq 0 ] || die "the lab runs as root (packages, MariaDB datadir, service users)"
  lock_state
  cmd_install
  load_secrets
  # shellcheck source=configure.sh
  . "$HERE/configure.sh"
  write_configs
  mkdir -p "$STATE"/{glance/images,nova/instances,neutron,cinder,rabbitmq,lock}
  if all_alive; then  # already up (or still starting): only wait for it
    labctl wait "$TIMEOUT" || die "services not ready (logs: $LOGDIR)"
    log "already running; clouds.yaml: $STATE/clouds.yaml"
    return 0
  fi

  # A port taken by someone else would only show up later as a service that
  # died: say it now. (CITYOPS_LAB_PORT_BASE moves every port at once.)
  local p
  for p in epmd:$P_EPMD rabbitmq:$P_AMQP mariadb:$P_MYSQL keystone:$P_KEYSTONE \
    placement:$P_PLACEMENT glance-api:$P_GLANCE neutron-server:$P_NEUTRON nova-api:$P_NOVA \
    cinder-api:$P_CINDER; do
    if ! pid_alive "${p%%:*}" && port_open "${p#*:}"; then
      die "port ${p#*:} (for ${p%%:*}) is already in use; set CITYOPS_LAB_PORT_BASE"
    fi
  done

  start epmd epmd -port "$P_EPMD" -address 127.0.0.1
  # RabbitMQ: own node name, data, config, Erlang cookie ($HOME) and epmd
  # port, so it never meets a RabbitMQ the machine may already run.
  SVC_ENV=(HOME="$STATE/rabbitmq" RABBITMQ_NODENAME=cityops-lab@localhost
    RABBITMQ_CONFIG_FILE="$ETC/rabbitmq.conf" RABBITMQ_CONF_ENV_FILE="$ETC/rabbitmq-env.conf"
    RABBITMQ_ENABLED_PLUGINS_FILE="$ETC/rabbitmq-plugins" RABBITMQ_MNESIA_BASE="$STATE/rabbitmq/mnesia"
    RABBITMQ_LOGS=- RABBITMQ_PID_FILE="$RUN/rabbitmq.pidfile" RABBITMQ_DIST_PORT="$P_DIST"
    ERL_EPMD_PORT="$P_EPMD" ERL_EPMD_ADDRESS=127.0.0.1
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
  start rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
  if [ ! -d "$STATE/mysql/mysql" ]; then
    mariadb-install-db --defaults-file="$ETC/my.cnf" --auth-root-authentication-method=socket \
      --skip-test-db >"$LOGDIR/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
  fi
  start mariadb mariadbd --defaults-file="$ETC/my.cnf"
  wait_for MariaDB mysql_up
  db_sync

  SVC_ENV=(OS_KEYSTONE_CONFIG_FILES="$ETC/keystone.conf")
  uwsgi_start keystone "$P_KEYSTONE" 1 4 --wsgi-file /usr/bin/keystone-wsgi-public
  wait_for Keystone port_open "$P_KEYSTONE"
  # Service users must exist before the services first call each other
  # (nova-compute reports to Placement at once and would retry only a minute later).
  labctl identity
  wait_for RabbitMQ port_open "$P_AMQP"

  SVC_ENV=(OS_PLACEMENT_CONFIG_DIR="$ETC")
  uwsgi_start placement "$P_PLACEMENT" 1 4 --wsgi-file /usr/bin/placement-api
  # nova-api loads its paste pipeline from the first file of the list
  SVC_ENV=(OS_NOVA_CONFIG_DIR="$ETC" OS_NOVA_CONFIG_FILES="nova-api-paste.ini;nova.conf")
  uwsgi_start nova-api "$P_NOVA" 2 1 --wsgi-file "$PYLIB/cityops_lab/nova_api_wsgi.py"
  local svc
  for svc in glance-api:glance-api.conf neutron-server:neutron.conf nova-conductor:nova.conf \
    nova-scheduler:nova.conf cinder-api:cinder.conf cinder-scheduler:cinder.conf \
    cinder-volume:cinder.conf; do
    start "${svc%%:*}" "$PY" -m cityops_lab.launch "${svc%%:*}" --config-file "$ETC/${svc#*:}"
  done
  # nova-compute registers with Placement as it starts: give it Placement first.
  wait_for Placement port_open "$P_PLACEMENT"
  start nova-compute "$PY" -m cityops_lab.launch nova-compute --config-file "$ETC/nova-compute.conf"

  labctl wait "$TIMEOUT" || die "services not ready (logs: $LOGDIR)"
  labctl resources
  log "up in $(($(now) - t0))s; clouds.yaml: $STATE/clouds.yaml"
}

cmd_down() {
  local i rev=()
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do rev+=("${SERVICES[$i]}"); done
  [ -d "$RUN" ] || { log "not running"; return 0; }
  lock_state
  # OpenStack services first (all at once), then the broker and the database,
  # then epmd, so none of them logs a storm of reconnection errors.
  local os=("${rev[@]:0:${#rev[@]}-3}")
  for i in "${os[@]}"; do stop "$i"; done
  wait_stopped 30 "${os[@]}"
  stop rabbitmq; stop mariadb; wait_stopped 60 rabbitmq mariadb
  stop epmd; wait_stopped 10 epmd
  log "stopped"
}

# Proportional set size of a service: its whole session (master + workers).
pss_mb() {
  local sid=$1 pid kb=0 v
  for pid in $(ps -e -o sid=,pid= | awk -v s="$sid" '$1 == s {print $2}'); do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null) || continue
    kb=$((kb + ${v:-0}))
  done
  echo $((kb / 1024))
}

cmd_status() {
  local name pid down=0 total=0 mb
  for name in "${SERVICES[@]}"; do
    if pid_alive "$name"; then
      read -r pid _ <"$RUN/$name.pid"; mb=$(pss_mb "$pid"); total=$((total + mb))
      printf '  %-16s up    pid %-7s %5s MB PSS\n' "$name" "$pid" "$mb"
    else
      printf '  %-16s DOWN\n' "$name"; down=1
    fi
  done
  printf '  %-16s %26s MB PSS\n' total "$total"
  [ $down -eq 0 ] || return 1
  load_secrets
  labctl check
}

cmd_env() {
  [ -f "$STATE/clouds.yaml" ] || die "no clouds.yaml yet: run '$0 up'"
  echo "$STATE/clouds.yaml"
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 install|up|down|status|env" >&2; exit 2 ;;
esac
