"""Nova virt driver for the lab, loaded as nova.virt.cityops_fake.LabFakeDriver.

It is nova.virt.fake.FakeDriver (servers are records, nothing boots) with:
- a capacity set in nova.conf [cityops_fake] instead of FakeDriver's 1000 vCPUs;
- its in-memory guest list rebuilt from the database at start, so servers made
  before a nova-compute restart can still be stopped, started, resized...;
- snapshot uploading a few bytes, so the snapshot image becomes active instead
  of staying queued forever.
This file lives outside the nova package: cityops_lab.launch adds its folder
to nova.virt's search path.
"""
import io

import nova.conf
from nova import context as nova_context
from nova import exception, objects
from nova.compute import power_state, task_states
from nova.image import glance
from nova.virt import fake
from oslo_config import cfg

CONF = nova.conf.CONF
CONF.register_opts([
    cfg.IntOpt("vcpus", default=16),
    cfg.IntOpt("memory_mb", default=32768),
    cfg.IntOpt("local_gb", default=500),
], group="cityops_fake")


class LabFakeDriver(fake.FakeDriver):
    def __init__(self, virtapi, read_only=False):
        # FakeDriver reads these as class attributes for Resources and inventory.
        self.vcpus = CONF.cityops_fake.vcpus
        self.memory_mb = CONF.cityops_fake.memory_mb
        self.local_gb = CONF.cityops_fake.local_gb
        super().__init__(virtapi, read_only)

    def init_host(self, host):
        super().init_host(host)
        # Runs before the compute manager looks at its instances: re-adopt every
        # server of this host with the power state the database remembers.
        ctxt = nova_context.get_admin_context()
        for inst in objects.InstanceList.get_by_host(ctxt, host, expected_attrs=["flavor"]):
            if inst.uuid in self.instances:
                continue
            state = inst.power_state
            if state in (None, power_state.NOSTATE):
                state = power_state.RUNNING
            self.instances[inst.uuid] = fake.FakeInstance(inst.name, state, inst.uuid)
            self.resources.claim(vcpus=inst.flavor.vcpus, mem=inst.flavor.memory_mb,
                                 disk=inst.flavor.root_gb)

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        meta = {"disk_format": "raw", "container_format": "bare"}
        data = io.BytesIO(b"cityops-lab snapshot of %s\n" % instance.uuid.encode())
        glance.API().update(context, image_id, meta, data, purge_props=False)
