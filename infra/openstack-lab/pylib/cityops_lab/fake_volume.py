"""Cinder fake backend: Cinder's own logging test driver plus no-op data copies.

FakeLoggingVolumeDriver already keeps volumes as records; the image<->volume
copies it inherits from the LVM driver would run qemu-img/dd on devices that do
not exist. Here volume-from-image (and so boot-from-volume) copies nothing, and
volume-to-image uploads a few bytes so the new image becomes active.
"""
import io

from cinder.tests import fake_driver


class LabVolumeDriver(fake_driver.FakeLoggingVolumeDriver):
    def copy_image_to_volume(self, context, volume, image_service, image_id):
        pass

    def copy_image_to_encrypted_volume(self, context, volume, image_service, image_id,
                                       *args, **kwargs):
        pass

    def copy_volume_to_image(self, context, volume, image_service, image_meta):
        data = io.BytesIO(b"cityops-lab volume %s\n" % volume.id.encode())
        image_service.update(context, image_meta["id"], {}, data, purge_props=False)

    def extend_volume(self, volume, new_size):
        pass
