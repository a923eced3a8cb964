"""Start one OpenStack service or admin command from Debian's library packages.

Only the library packages are installed (no /usr/bin/nova-conductor & co), so
the lab names each console script's module here. Usage:
    python3 -m cityops_lab.launch nova-compute --config-file nova.conf
Each target module is imported first: nova.cmd, neutron.cmd.eventlet, glance.cmd
and cinder.cmd monkey-patch eventlet on import, which must precede other imports.
"""
import importlib
import os
import sys

TARGETS = {
    "nova-conductor": "nova.cmd.conductor",
    "nova-scheduler": "nova.cmd.scheduler",
    "nova-compute": "nova.cmd.compute",
    "nova-manage": "nova.cmd.manage",
    "neutron-server": "neutron.cmd.eventlet.server",
    "neutron-db-manage": "neutron.db.migration.cli",
    "glance-api": "glance.cmd.api",
    "glance-manage": "glance.cmd.manage",
    "cinder-api": "cinder.cmd.api",
    "cinder-scheduler": "cinder.cmd.scheduler",
    "cinder-volume": "cinder.cmd.volume",
    "cinder-manage": "cinder.cmd.manage",
}


def main():
    name = sys.argv[1]
    module = importlib.import_module(TARGETS[name])
    if name == "nova-compute":
        # Nova loads a virt driver only as "nova.virt.<compute_driver>", so the
        # lab's driver directory is added to the nova.virt package's search path
        # (no file is written into the system's nova package).
        import nova.virt
        nova.virt.__path__.append(os.path.join(os.path.dirname(__file__), "novavirt"))
    # argv[0] is the program name oslo.config reports and glance uses.
    sys.argv = [name, *sys.argv[2:]]
    sys.exit(module.main())


if __name__ == "__main__":
    main()
