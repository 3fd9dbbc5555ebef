#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.


"""Images and the factory: multistore_prefix/domain/image.py."""

import pytest

from multistore_prefix.domain import image as image_mod


def test_new_image_takes_glance_keywords():
    image = image_mod.ImageFactory().new_image(
        image_id='abc', name='n', visibility='public', min_disk=1,
        min_ram=2, protected=True, owner='o', disk_format='raw',
        container_format='bare', extra_properties={'p': 'v'},
        tags=['t', 't'], os_hidden=True)
    assert (image.image_id, image.status, image.name, image.visibility,
            image.min_disk, image.min_ram, image.protected, image.owner,
            image.disk_format, image.container_format, image.os_hidden) == (
        'abc', 'queued', 'n', 'public', 1, 2, True, 'o', 'raw', 'bare', True)
    assert image.extra_properties == {'p': 'v'}
    assert image.tags == {'t'}
    assert image.locations == []
    assert image.created_at == image.updated_at is not None


def test_new_image_defaults():
    image = image_mod.ImageFactory().new_image()
    assert len(image.image_id) == 36
    assert (image.visibility, image.min_disk, image.protected,
            image.size) == ('shared', 0, False, None)


def test_read_only_and_unknown_arguments():
    factory = image_mod.ImageFactory()
    with pytest.raises(image_mod.ReadOnlyAttribute):
        factory.new_image(status='active')
    with pytest.raises(TypeError):
        factory.new_image(colour='blue')
    with pytest.raises(image_mod.ReservedProperty):
        factory.new_image(extra_properties={'name': 'x'})


def test_attribute_names_are_glances():
    assert set(image_mod.ATTRIBUTES) >= {
        'image_id', 'name', 'status', 'visibility', 'size', 'checksum',
        'disk_format', 'container_format', 'min_disk', 'min_ram',
        'protected', 'os_hidden', 'owner', 'extra_properties', 'tags',
        'locations', 'created_at', 'updated_at'}
    image = image_mod.Image('x', 'active')
    for name in image_mod.ATTRIBUTES:
        getattr(image, name)
