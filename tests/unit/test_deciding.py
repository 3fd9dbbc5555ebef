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

"""The row rules: the backfill's, and Glance's where the filter runs."""

import pytest

from multistore_prefix import crypt
from multistore_prefix import deciding
from multistore_prefix import location_map as lmap
from multistore_prefix import resolver as resolver_mod
from tests.unit.test_resolver import CONF

SLOW = 'file:///var/lib/glance/images2/x'


@pytest.fixture
def decider(make_conf):
    location_map = lmap.LocationMap.from_config(make_conf(CONF))

    def make(**options):
        return deciding.Decider(resolver_mod.Resolver(location_map),
                                **options)
    return make


def decide(decider, url, text):
    return decider.classify([(1, 'image', url, text)], 1)


@pytest.mark.parametrize('text, backfill, glance', [
    ('{}', '{"store": "slow"}', '{"store": "slow"}'),
    ('{"store": 7}', 'invalid-store-value', '{"store": "slow"}'),
    ('{"store": false}', 'invalid-store-value', '{"store": "slow"}'),
    ('{"store": ["a"]}', 'invalid-store-value', 'invalid-store-value'),
    ('{"a": NaN}', 'bad-metadata', '{"a": NaN, "store": "slow"}'),
    ('{"backend": "fast"}', 'backend-key',
     '{"backend": "fast", "store": "slow"}'),
    ('{"store": "slow", "store": "fast"}', 'bad-metadata', 'bad-metadata'),
])
def test_glances_rules_write_where_glance_would(decider, text, backfill,
                                                glance):
    cases = (({}, backfill), ({'glance_rules': True}, glance))
    for options, expected in cases:
        batch = decide(decider(**options), SLOW, text)
        if expected.startswith('{'):
            [write] = batch.writes
            assert write.new_text == expected and write.store == 'slow'
        else:
            [unresolved] = batch.unresolved
            assert unresolved.reason == expected and unresolved.detail


def test_a_url_with_s3_keys_is_decided_without_them(make_conf):
    location_map = lmap.LocationMap.from_config(make_conf(
        '[DEFAULT]\nenabled_backends = old:s3, new:s3\n'
        '[old]\ns3_store_host = http://h\ns3_store_bucket = glance\n'
        '[new]\ns3_store_host = http://h\ns3_store_bucket = glance-new\n'))
    decider = deciding.Decider(resolver_mod.Resolver(location_map),
                               strip_s3_credentials=True)
    batch = decider.classify([
        (1, 'i', 's3://k:s@h/glance-new/o?sig=1', '{}'),
        (2, 'i', 's3://k:s@h/glance/o', '{"store": "old"}'),
        (3, 'i', 's3://k:s@h/elsewhere/o', '{}'),
        (4, 'i', 's3://h/glance-new/o', '{}')], 4)
    assert [(r.location_id, r.store, r.new_url, r.metadata)
            for r in batch.rewrites] == [
        (1, 'new', 's3://h/glance-new/o', {}),
        (2, 'old', 's3://h/glance/o', {'store': 'old'})]
    assert [row[0] for row in batch.unresolved] == [3]
    assert [(w.location_id, w.store) for w in batch.writes] == [(4, 'new')]


def test_an_encrypted_url_is_decided_on_its_plain_text(decider):
    cipher = crypt.UrlCipher('0123456789abcdef')
    stored = cipher.encrypt(SLOW)
    batch = decider(cipher=cipher).classify([
        (1, 'i', stored, '{}'), (2, 'i', 'not-a-url-nor-ciphertext', '{}'),
        (3, 'i', 'file:///var/lib/glance/images/y', '{}')], 3)
    assert [(w.location_id, w.store, w.text, w.new_text)
            for w in batch.writes] == [
        (1, 'slow', '{}', '{"store": "slow"}'),
        (3, 'fast', '{}', '{"store": "fast"}')]
    assert [row[3] for row in batch.unresolved] == [deciding.UNDECRYPTABLE]
    assert (cipher.tried, cipher.decrypted) == (2, 1)
