# Sourced by lab.sh: writes every configuration file under $ETC from the
# variables lab.sh sets (ports, passwords, paths). Rewritten on each `up`, so
# the files always match these scripts; state (databases, keys, images) is not.
# shellcheck shell=bash

db_url() { echo "mysql+pymysql://openstack:$DB_PASS@127.0.0.1:$P_MYSQL/$1?charset=utf8"; }

# Password auth of a service user, for the sections a service uses to call
# another one ([placement], [neutron], [service_user], [nova], [cinder]).
ks_auth() {
  cat <<EOF
auth_type = password
auth_url = $URL_KEYSTONE
project_name = service
project_domain_name = Default
user_domain_name = Default
username = $1
password = $SERVICE_PASS
region_name = RegionOne
EOF
}

# Token validation for an API. service_token_roles_required: Debian's Cinder
# carries the OSSA-2023-003 fix and only trusts service tokens whose user has
# the "service" role (set for all, harmless elsewhere).
authtoken() {
  cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $URL_KEYSTONE
service_token_roles_required = true
service_token_roles = service
$(ks_auth "$1")
EOF
}

write_configs() {
  mkdir -p "$ETC"
  # Written 0600 at creation time: every file below holds a password.
  local old_umask; old_umask=$(umask); umask 077

  cat >"$ETC/my.cnf" <<EOF
[client]
socket = $RUN/mysqld.sock
port = $P_MYSQL
[mysqld]
user = root
datadir = $STATE/mysql
socket = $RUN/mysqld.sock
pid-file = $RUN/mysqld.pidfile
port = $P_MYSQL
bind-address = 127.0.0.1
log-error = $LOGDIR/mariadb.log
skip-name-resolve
# utf8 (3-byte) is what the OpenStack schemas are written for.
character-set-server = utf8mb3
collation-server = utf8mb3_general_ci
# every service worker keeps a pool of connections
max_connections = 1000
# a lab: small cache, and durability traded for speed (db syncs run faster)
innodb_buffer_pool_size = 96M
innodb_flush_log_at_trx_commit = 2
innodb_doublewrite = 0
performance_schema = OFF
EOF

  cat >"$ETC/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$P_AMQP
# created on first boot only, so it never needs rabbitmqctl
default_user = openstack
default_pass = $RABBIT_PASS
loopback_users = none
EOF
  echo '[].' >"$ETC/rabbitmq-plugins"
  : >"$ETC/rabbitmq-env.conf"

  cat >"$ETC/keystone.conf" <<EOF
[database]
connection = $(db_url keystone)
[token]
provider = fernet
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
[fernet_receipts]
key_repository = $STATE/keystone/fernet-keys
[credential]
key_repository = $STATE/keystone/credential-keys
EOF

  cat >"$ETC/placement.conf" <<EOF
[placement_database]
connection = $(db_url placement)
[api]
auth_strategy = keystone
$(authtoken placement)
EOF

  cat >"$ETC/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $P_GLANCE
workers = 1
[database]
connection = $(db_url glance)
[paste_deploy]
flavor = keystone
config_file = $ETC/glance-api-paste.ini
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = $STATE/glance/images/
[oslo_concurrency]
lock_path = $STATE/lock/glance
$(authtoken glance)
EOF

  cat >"$ETC/neutron.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $P_NEUTRON
state_path = $STATE/neutron
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
api_paste_config = $ETC/neutron-api-paste.ini
transport_url = rabbit://openstack:$RABBIT_PASS@127.0.0.1:$P_AMQP/
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
# no DHCP agent exists to notify
dhcp_agent_notification = false
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
[database]
connection = $(db_url neutron)
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = cityops_bindall
extension_drivers = port_security
[ml2_type_flat]
flat_networks = public
[ml2_type_vxlan]
vni_ranges = 1:10000
[oslo_concurrency]
lock_path = $STATE/lock/neutron
[nova]
$(ks_auth neutron)
endpoint_type = public
$(authtoken neutron)
EOF

  cat >"$ETC/nova.conf" <<EOF
[DEFAULT]
host = $LAB_HOST
my_ip = 127.0.0.1
state_path = $STATE/nova
instances_path = $STATE/nova/instances
transport_url = rabbit://openstack:$RABBIT_PASS@127.0.0.1:$P_AMQP/
enabled_apis = osapi_compute
compute_driver = cityops_fake.LabFakeDriver
# no random delay (up to 60 s by default) before the periodic tasks start:
# the scheduler's host discovery below should run as soon as it can
periodic_fuzzy_delay = 0
# one compute host: a resize can only land where the server already is
allow_resize_to_same_host = true
# the fake capacity is exactly what the hypervisor shows (no overcommit)
cpu_allocation_ratio = 1.0
ram_allocation_ratio = 1.0
disk_allocation_ratio = 1.0
reserved_host_memory_mb = 0
# nothing plugs VIFs: never wait for a network-vif-plugged event
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
[cityops_fake]
vcpus = $LAB_VCPUS
memory_mb = $LAB_RAM_MB
local_gb = $LAB_DISK_GB
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $ETC/nova-api-paste.ini
[api_database]
connection = $(db_url nova_api)
[database]
connection = $(db_url nova)
[conductor]
workers = 1
[scheduler]
workers = 1
# maps the compute host into cell1 on its own (no nova-manage run needed)
discover_hosts_in_cells_interval = 2
[oslo_concurrency]
lock_path = $STATE/lock/nova
[vnc]
enabled = false
[glance]
region_name = RegionOne
valid_interfaces = public
# OSSA-2023-003: Cinder accepts a detach from Nova only with Nova's service token
[service_user]
send_service_user_token = true
$(ks_auth nova)
[placement]
$(ks_auth placement)
valid_interfaces = public
[neutron]
$(ks_auth neutron)
valid_interfaces = public
[cinder]
catalog_info = volumev3::publicURL
os_region_name = RegionOne
$(ks_auth cinder)
$(authtoken nova)
EOF

  # nova-compute must not even have [api_database] set (an empty value still
  # counts): it would read that database directly, which nova-compute refuses.
  awk '/^\[/ {skip = ($0 == "[api_database]")} !skip' "$ETC/nova.conf" >"$ETC/nova-compute.conf"

  cat >"$ETC/cinder.conf" <<EOF
[DEFAULT]
host = $LAB_HOST
my_ip = 127.0.0.1
state_path = $STATE/cinder
auth_strategy = keystone
transport_url = rabbit://openstack:$RABBIT_PASS@127.0.0.1:$P_AMQP/
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $P_CINDER
osapi_volume_workers = 1
api_paste_config = $ETC/cinder-api-paste.ini
glance_api_servers = $URL_GLANCE
enabled_backends = fake
[fake]
volume_driver = cityops_lab.fake_volume.LabVolumeDriver
volume_backend_name = fake
[database]
connection = $(db_url cinder)
[oslo_concurrency]
lock_path = $STATE/lock/cinder
[nova]
$(ks_auth nova)
interface = public
$(authtoken cinder)
EOF

  # Paste pipelines: the library packages ship none, these are the minimal
  # keystone-authenticated pipelines each API needs.
  cat >"$ETC/nova-api-paste.ini" <<'EOF'
[composite:osapi_compute]
use = call:nova.api.openstack.urlmap:urlmap_factory
/: versions
/v2.1: compute_v21
[composite:compute_v21]
use = call:nova.api.auth:pipeline_factory_v21
keystone = request_id faultwrap authtoken keystonecontext router_v21
[filter:request_id]
paste.filter_factory = nova.api.compute_req_id:ComputeReqIdMiddleware.factory
[filter:faultwrap]
paste.filter_factory = nova.api.openstack:FaultWrapper.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
[filter:keystonecontext]
paste.filter_factory = nova.api.auth:NovaKeystoneContext.factory
[app:router_v21]
paste.app_factory = nova.api.openstack.compute.routes:APIRouterV21.factory
[app:versions]
paste.app_factory = nova.api.openstack.compute.versions:Versions.factory
EOF

  cat >"$ETC/neutron-api-paste.ini" <<'EOF'
[composite:neutron]
use = egg:Paste#urlmap
/: versions
/v2.0: api_v2
[composite:api_v2]
use = call:neutron.auth:pipeline_factory
keystone = request_id catch_errors authtoken keystonecontext extensions api_app
[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory
[filter:catch_errors]
paste.filter_factory = oslo_middleware:CatchErrors.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
[filter:keystonecontext]
paste.filter_factory = neutron.auth:NeutronKeystoneContext.factory
[filter:extensions]
paste.filter_factory = neutron.api.extensions:plugin_aware_extension_middleware_factory
[app:versions]
paste.app_factory = neutron.pecan_wsgi.app:versions_factory
[app:api_app]
paste.app_factory = neutron.api.v2.router:APIRouter.factory
EOF

  cat >"$ETC/glance-api-paste.ini" <<'EOF'
[pipeline:glance-api-keystone]
pipeline = versionnegotiation authtoken context rootapp
[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: versions
/v2: api_v2
[app:versions]
paste.app_factory = glance.api.versions:create_resource
[app:api_v2]
paste.app_factory = glance.api.v2.router:API.factory
[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = true
[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory
EOF

  cat >"$ETC/cinder-api-paste.ini" <<'EOF'
[composite:osapi_volume]
use = call:cinder.api:root_app_factory
/: versions
/v3: api_v3
[composite:api_v3]
use = call:cinder.api.middleware.auth:pipeline_factory
keystone = request_id faultwrap authtoken keystonecontext router_v3
[filter:request_id]
paste.filter_factory = oslo_middleware.request_id:RequestId.factory
[filter:faultwrap]
paste.filter_factory = cinder.api.middleware.fault:FaultWrapper.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
[filter:keystonecontext]
paste.filter_factory = cinder.api.middleware.auth:CinderKeystoneContext.factory
[app:router_v3]
paste.app_factory = cinder.api.v3.router:APIRouter.factory
[app:versions]
paste.app_factory = cinder.api.versions:Versions.factory
EOF

  cat >"$STATE/clouds.yaml" <<EOF
# Generated by infra/openstack-lab/lab.sh: OS_CLOUD=cityops-lab OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml
clouds:
  cityops-lab:
    auth:
      auth_url: $URL_KEYSTONE/v3
      username: admin
      password: $ADMIN_PASS
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
  umask "$old_umask"
}
