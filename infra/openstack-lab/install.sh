#!/usr/bin/env bash
# Install the Debian bookworm packages the lab runs from. Idempotent: packages
# already installed are skipped, and nothing is fetched when all are present.
set -euo pipefail

# Library packages only: the daemon packages (keystone, nova-api, ...) bring
# debconf/dbconfig prompts and init scripts that fight a hand-run lab.
PACKAGES=(python3-keystone python3-nova python3-placement python3-glance
  python3-neutron python3-cinder python3-pymysql uwsgi-core uwsgi-plugin-python3
  mariadb-server rabbitmq-server)

missing=()
for p in "${PACKAGES[@]}"; do
  # "install ok installed" is the only state that counts (not half-configured)
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "openstack-lab: packages already installed"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "openstack-lab: install needs root (apt-get)" >&2; exit 1; }

echo "openstack-lab: installing ${missing[*]}"
# policy-rc.d exiting 101 tells invoke-rc.d "not allowed": the maintainer
# scripts then leave system-wide MariaDB/RabbitMQ stopped. It must go away
# afterwards, whatever happens, or later package installs stop starting services.
POLICY=/usr/sbin/policy-rc.d
if [ -e "$POLICY" ]; then
  cp -p "$POLICY" "$POLICY.cityops-saved"
fi
restore_policy() {
  if [ -e "$POLICY.cityops-saved" ]; then mv -f "$POLICY.cityops-saved" "$POLICY"; else rm -f "$POLICY"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' >"$POLICY"
chmod 755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
echo "openstack-lab: packages installed"
