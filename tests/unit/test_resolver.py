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

"""The store rules (multistore_prefix/resolver.py), as every entrance
applies them: through the one row engine (multistore_prefix/deciding.py)."""

import json

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from multistore_prefix import deciding
from multistore_prefix import location_map as lmap
from multistore_prefix import resolver as resolver_mod

CONF = """
    [DEFAULT]
    enabled_backends = fast:file, slow:file
    [fast]
    filesystem_store_datadir = /var/lib/glance/images
    [slow]
    filesystem_store_datadir = /var/lib/glance/images2
"""


@pytest.fixture
def location_map(make_conf):
    return lmap.LocationMap.from_config(make_conf(CONF))


@pytest.fixture
def decider(location_map):
    def make(replace_invalid_stores=False, **options):
        return deciding.Decider(resolver_mod.Resolver(
            location_map, replace_invalid_stores=replace_invalid_stores),
            **options)
    return make


def decide(decider, *rows) -> deciding.Batch:
    """``rows``: (URL, metadata), the metadata as an object or its text."""
    return decider.classify([
        (n, 'image', url, meta if isinstance(meta, (str, bytes, type(None)))
         else json.dumps(meta)) for n, (url, meta) in enumerate(rows, 1)],
        len(rows))


def test_legacy_locations_get_their_store(decider):
    batch = decide(decider(), ('file:///var/lib/glance/images/a', {}),
                   ('file:///var/lib/glance/images2/b', {'other': 'kept'}))
    assert [(w.location_id, w.store, w.new_text) for w in batch.writes] == [
        (1, 'fast', '{"store": "fast"}'),
        (2, 'slow', '{"other": "kept", "store": "slow"}')]
    assert batch.unresolved == [] and batch.already_set == 0


def test_enabled_store_is_left_alone(decider):
    batch = decide(decider(), ('file:///var/lib/glance/images2/b',
                               {'store': 'fast'}))
    # Already names an enabled store: not second-guessed.
    assert batch.writes == [] and batch.already_set == 0
    assert batch.wrong == [deciding.Wrong(
        1, 'image', 'file:///var/lib/glance/images2/b', 'fast', 'slow')]


NESTED = CONF + """
    [DEFAULT]
    enabled_backends = fast:file, slow:file, inner:file
    [inner]
    filesystem_store_datadir = /var/lib/glance/images/inner
"""


@pytest.mark.parametrize('url, named, owner', [
    # Glance's first match: images2 is not under images.
    ('file:///var/lib/glance/images2/b', 'fast', 'slow'),
    ('file:///var/lib/glance/images/b', 'slow', 'fast'),
    # The right name.
    ('file:///var/lib/glance/images2/b', 'slow', None),
    # Nested: the outer store's own directory holds it too; not certain.
    ('file:///var/lib/glance/images/inner/b', 'fast', None),
    # Outside every store: nothing says the name is wrong.
    ('file:///elsewhere/b', 'fast', None),
    (None, 'fast', None),
])
def test_wrong_store_only_when_certain(make_conf, url, named, owner):
    location_map = lmap.LocationMap.from_config(make_conf(NESTED))
    resolver = resolver_mod.Resolver(location_map)
    assert resolver.wrong_store(named, url) == owner
    row = [(1, 'i', url, json.dumps({'store': named, 'k': 'v'}))]
    # Left alone by default; changed with fix_wrong_stores.
    batch = deciding.Decider(resolver).classify(row, 1)
    assert batch.writes == []
    fixing = deciding.Decider(resolver, fix_wrong_stores=True)
    batch = fixing.classify(row, 1)
    if owner is None:
        assert batch.writes == [] and batch.already_set == 1
    else:
        [write] = batch.writes
        assert (write.store, write.previous, write.fixing) == (
            owner, named, named)
        assert json.loads(write.new_text) == {'store': owner, 'k': 'v'}


def test_renamed_store_is_resolved_again(decider):
    batch = decide(decider(), ('file:///var/lib/glance/images2/b',
                               {'store': 'old-name'}))
    [write] = batch.writes
    assert write.store == 'slow' and write.previous == 'old-name'


@pytest.mark.parametrize('url, meta, reason', [
    ('file:///nowhere/x', {}, lmap.NO_PREFIX),
    ('file:///../x', {}, lmap.INVALID_URL),
    ('swift+https://user:key@auth/c/o', {}, lmap.UNKNOWN_SCHEME),
    ('file:///var/lib/glance/images/a', None, resolver_mod.BAD_METADATA),
    ('file:///var/lib/glance/images/a', 'null', resolver_mod.BAD_METADATA),
    ('file:///var/lib/glance/images/a', '"{\\"a\\": 1}"',
     resolver_mod.BAD_METADATA),
    ('file:///var/lib/glance/images/a', ['store'], resolver_mod.BAD_METADATA),
    (None, {}, resolver_mod.BAD_LOCATION),
    (42, {}, resolver_mod.BAD_LOCATION),
])
def test_unresolvable_is_reported_with_reason(decider, url, meta, reason):
    batch = decide(decider(), (url, meta))
    [unresolved] = batch.unresolved
    assert unresolved.reason == reason and unresolved.location_id == 1
    assert unresolved.detail and batch.writes == []


def test_unresolved_detail_holds_no_secret(decider):
    batch = decide(decider(), ('file://user:sekrit@host/x', {}))
    [unresolved] = batch.unresolved
    assert 'sekrit' not in unresolved.detail


INVALID_STORES = [123, ['fast'], {}, True, '', None, 1.5]


@pytest.mark.parametrize('value', INVALID_STORES, ids=repr)
def test_a_store_that_is_not_a_name_is_reported_and_left(decider, value):
    # Someone's data, not a legacy location: never overwritten unasked.
    batch = decide(decider(), ('file:///var/lib/glance/images/a',
                               {'store': value}))
    [unresolved] = batch.unresolved
    assert unresolved.reason == resolver_mod.INVALID_STORE
    assert '--replace-invalid-stores' in unresolved.detail
    assert batch.writes == [] and batch.already_set == 0


@pytest.mark.parametrize('value', INVALID_STORES, ids=repr)
def test_a_store_that_is_not_a_name_is_replaced_when_asked(decider, value):
    batch = decide(decider(replace_invalid_stores=True),
                   ('file:///var/lib/glance/images/a', {'store': value}))
    [write] = batch.writes
    assert write.store == 'fast' and write.previous == value


def test_metadata_that_is_not_an_object_says_why(decider):
    batch = decide(decider(), ('file:///var/lib/glance/images/a',
                               '{"a": NaN}'))
    [unresolved] = batch.unresolved
    assert unresolved.reason == resolver_mod.BAD_METADATA
    assert 'not standard JSON' in unresolved.detail


def test_a_url_that_is_not_utf8_is_a_bad_location(decider):
    batch = decide(decider(), (b'file:///var/lib/glance/images/\xff', {}))
    [unresolved] = batch.unresolved
    assert (unresolved.reason, unresolved.detail) == (
        resolver_mod.BAD_LOCATION, 'the URL is not valid UTF-8')


@pytest.mark.parametrize('rows, fix, may', [
    ([('file:///var/lib/glance/images/a', {'store': 'fast'})], False,
     False),
    ([('file:///var/lib/glance/images2/a', {'store': 'fast'})], False,
     False),
    ([('file:///var/lib/glance/images2/a', {'store': 'fast'})], True,
     True),
    ([('file:///var/lib/glance/images/a', {'store': 'fast'}),
      ('file:///var/lib/glance/images2/b', {})], False, True),
    ([('file:///var/lib/glance/images/a', {'store': 'gone'})], False,
     True),
    # Nothing to write: no prefix owns it, bad metadata or input.
    ([('file:///elsewhere/a', {})], False, False),
    ([('file:///var/lib/glance/images/a', None)], False, False),
    ([(None, {}), (42, '42')], False, False), ([], False, False),
])
def test_only_what_needs_a_store_is_written(decider, rows, fix, may):
    assert bool(decide(decider(fix_wrong_stores=fix), *rows).writes) is may


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(
    st.one_of(st.text(max_size=40), st.binary(max_size=10), JSONISH),
    st.one_of(st.text(max_size=20), JSONISH, st.dictionaries(
        st.sampled_from(['store', 'x', 'backend']), JSONISH, max_size=2))),
    max_size=5))
def test_every_row_is_decided_once_and_nothing_raises(decider, rows):
    for fix in (False, True):
        batch = decide(decider(fix_wrong_stores=fix), *rows)
        total = (len(batch.writes) + len(batch.unresolved)
                 + batch.already_set + len(batch.asked)
                 + (0 if fix else len(batch.wrong)))
        assert total == len(rows)
        for write in batch.writes:
            assert write.store in ('fast', 'slow')
