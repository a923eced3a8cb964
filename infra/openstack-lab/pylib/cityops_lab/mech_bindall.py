"""ML2 mechanism driver that binds every port.

The lab runs Neutron without any L2 agent, so no real driver can bind a port:
ports would stay binding_failed and Nova would refuse to boot. This driver
accepts the first segment offered, as an OVS port that is ACTIVE at once.
Registered as "cityops_bindall" by the entry point in cityops_lab-0.1.dist-info.
"""
from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID], portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True},
                status=constants.PORT_STATUS_ACTIVE)
            return
