#!/usr/bin/env bash
# Installs what the local stack needs (Debian 12): PostgreSQL 15 with a TimescaleDB built from
# Debian trixie's source package, and Mosquitto. Idempotent and silent when nothing is missing.
# It never starts a service: the stack starts its own `cityops` cluster and broker.
set -euo pipefail

PG_MAJOR=15
# postgresql-15-postgis-3: the map's geometry (docs/map.md)
PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-15-postgis-3 cmake gcc make libssl-dev mosquitto
          mosquitto-clients openssh-server openssh-client mariadb-server mariadb-client libmariadb-dev pkg-config
          # the console's browser tests; a CJK font so Chinese renders in the browser
          chromium fonts-noto-cjk nftables
          # a database that fails over (docs/operations.md): Patroni with etcd as its store;
          # python3-etcd is Patroni's etcd client (its Depends is satisfied by pysyncobj alone)
          patroni python3-etcd etcd-server
          # the SNMP driver's tests: Net-SNMP's agent and its command-line tools (snmptrap)
          snmpd snmp
          # the drivers' interoperability tests (tests/interop): a Modbus server of our own
          # built on libmodbus, another vendor's implementation (gcc is listed above)
          libmodbus-dev
          # office files previewed as PDF (datafoundation/office_preview.py): LibreOffice
          # without its desktop, 66 packages, ~300 MB (docs/console.md)
          libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui)
# The console is built with npm at set-up time: Debian's node 18 suffices (vite 6). A node
# installed another way (e.g. NodeSource, which bundles npm) is used as it is.
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi
CACHE_DIR="${CITYOPS_CACHE_DIR:-/var/cache/cityops}"
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
TSDB_CONTROL="/usr/share/postgresql/${PG_MAJOR}/extension/timescaledb.control"
POLICY=/usr/sbin/policy-rc.d
TRIXIE_SRC="deb-src http://deb.debian.org/debian trixie main"

log() { printf 'install.sh: %s\n' "$*" >&2; }

if [[ $EUID -ne 0 ]]; then
    log "must run as root (it installs Debian packages)"
    exit 1
fi

installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        installed "$pkg" || printf '%s\n' "$pkg"
    done
}

# Package scripts would otherwise start the system-wide PostgreSQL `main` cluster and a
# Mosquitto on 1883, which are not ours. An existing policy is left exactly as it was.
policy_created=0
block_service_starts() {
    if [[ ! -e $POLICY ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY"
        chmod 0755 "$POLICY"
        policy_created=1
    fi
}
unblock_service_starts() {
    if [[ $policy_created -eq 1 ]]; then
        rm -f "$POLICY"
        policy_created=0
    fi
}
trap unblock_service_starts EXIT

# The dev headers must match the installed server; pinning also keeps apt from upgrading the
# server binaries under a running cluster. Without that version on the mirror, take the newest.
pin_server_dev() {
    local pkg=$1 server_version
    if [[ $pkg != postgresql-server-dev-${PG_MAJOR} ]] || ! installed "postgresql-${PG_MAJOR}"; then
        printf '%s\n' "$pkg"
        return
    fi
    server_version="$(dpkg-query -W -f='${Version}' "postgresql-${PG_MAJOR}")"
    if apt-cache madison "$pkg" | awk -F' [|] ' '{print $2}' | grep -qxF "$server_version"; then
        printf '%s=%s\n' "$pkg" "$server_version"
    else
        printf '%s\n' "$pkg"
    fi
}

install_packages() {
    local -a missing wanted=()
    local pkg
    mapfile -t missing < <(missing_packages)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Other project installers (infra/openstack-lab) also swap policy-rc.d; one at a time.
    exec 9>/var/lock/cityops-apt.lock
    flock -w 900 9
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    for pkg in "${missing[@]}"; do
        wanted+=("$(pin_server_dev "$pkg")")
    done
    block_service_starts
    mkdir -p "$CACHE_DIR"
    if ! apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
            "${wanted[@]}" >"$CACHE_DIR/apt-install.log" 2>&1; then
        log "apt-get install failed:"
        tail -n 20 "$CACHE_DIR/apt-install.log" >&2
        exit 1
    fi
    unblock_service_starts
}

# Trixie is only ever named in a private source list read by this one apt call, so the
# system's apt never sees it and cannot upgrade anything from it.
apt_trixie() {
    apt-get -qq \
        -o Dir::Etc::SourceList="$CACHE_DIR/apt/sources.list" \
        -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$CACHE_DIR/apt/lists" \
        -o Dir::Cache="$CACHE_DIR/apt/cache" \
        "$@"
}

download_source() {
    local orig
    orig="$(find "$CACHE_DIR/src" -maxdepth 1 -name 'timescaledb_*.orig.tar.*' -print -quit)"
    if [[ -n $orig ]]; then
        printf '%s\n' "$orig"
        return
    fi
    log "downloading the timescaledb source package from Debian trixie"
    mkdir -p "$CACHE_DIR/apt/lists/partial" "$CACHE_DIR/apt/cache/archives/partial"
    printf '%s\n' "$TRIXIE_SRC" >"$CACHE_DIR/apt/sources.list"
    # apt downloads as the unprivileged _apt user when it can write the target folder
    chown _apt "$CACHE_DIR/src" 2>/dev/null || true
    if ! (apt_trixie update && cd "$CACHE_DIR/src" \
            && apt_trixie source --download-only timescaledb) >"$CACHE_DIR/download.log" 2>&1; then
        log "could not download the timescaledb source package:"
        tail -n 20 "$CACHE_DIR/download.log" >&2
        exit 1
    fi
    find "$CACHE_DIR/src" -maxdepth 1 -name 'timescaledb_*.orig.tar.*' -print -quit
}

build_timescaledb() {
    local orig work
    [[ -e $TSDB_CONTROL ]] && return 0
    mkdir -p "$CACHE_DIR/src"
    orig="$(download_source)"
    work="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
    log "building timescaledb from $(basename "$orig")"
    tar -xf "$orig" -C "$work" --strip-components=1
    (
        cd "$work"
        ./bootstrap -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
            -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$PG_CONFIG" >"$work.log" 2>&1
        make -C build -j"$(nproc)" >>"$work.log" 2>&1
        make -C build install >>"$work.log" 2>&1
    ) || {
        log "timescaledb build failed (full log: $work.log):"
        tail -n 20 "$work.log" >&2
        exit 1
    }
    rm -rf "$work" "$work.log"
}

# Dirty page cache written back steadily, 64 MB at a time, rather than by the kernel's default
# of 10 % of RAM (~2.4 GB here) every 30 s: PostgreSQL writes its data pages through the page
# cache, and each such burst queued ahead of the WAL fsyncs held every commit back for ~0.5 s
# (`make bench-ingest`, 60-s runs at 139,000-146,000 readings/s: p99 232 and 266 ms with the
# default, 178 ms with this).
# A host-wide setting, as any database host would have; where /proc/sys is read-only (some
# containers) it is skipped with a warning.
WRITEBACK_CONF=/etc/sysctl.d/60-cityops-writeback.conf
WRITEBACK="vm.dirty_background_bytes = 67108864"
tune_writeback() {
    if [[ "$(cat "$WRITEBACK_CONF" 2>/dev/null)" != "$WRITEBACK" ]]; then
        printf '%s\n' "$WRITEBACK" >"$WRITEBACK_CONF"
    fi
    [[ "$(sysctl -n vm.dirty_background_bytes)" == 67108864 ]] && return 0
    sysctl -q -p "$WRITEBACK_CONF" 2>/dev/null \
        || log "warning: could not set $WRITEBACK (commit latency will spike under load)"
}

install_packages
build_timescaledb
tune_writeback
