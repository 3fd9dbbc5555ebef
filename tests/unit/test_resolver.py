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

"""The resolver: multistore_prefix/resolver.py."""

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from multistore_prefix import location_map as lmap
from multistore_prefix import metadata as metadata_text
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
def resolver(make_conf):
    return resolver_mod.Resolver(
        lmap.LocationMap.from_config(make_conf(CONF)))


def loc(url, metadata=None, status='active'):
    return {'url': url, 'metadata': {} if metadata is None else metadata,
            'status': status}


def test_legacy_locations_get_their_store(resolver):
    plan = resolver.plan([
        loc('file:///var/lib/glance/images/a'),
        loc('file:///var/lib/glance/images2/b', {'other': 'kept'}),
    ])
    assert [(c.index, c.store) for c in plan.changes] == [
        (0, 'fast'), (1, 'slow')]
    assert plan.changes[1].metadata_update == {'store': 'slow'}
    assert plan.unresolved == [] and plan.already_set == 0


def test_enabled_store_is_left_alone(resolver):
    plan = resolver.plan([loc('file:///var/lib/glance/images2/b',
                              {'store': 'fast'})])
    # Already names an enabled store: not second-guessed.
    assert plan.changes == [] and plan.already_set == 1


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
    # Left alone by default; changed with fix_wrong_stores.
    assert resolver.plan([loc(url, {'store': named, 'k': 'v'})]).changes == []
    fixing = resolver_mod.Resolver(location_map, fix_wrong_stores=True)
    plan = fixing.plan([loc(url, {'store': named, 'k': 'v'})])
    if owner is None:
        assert plan.changes == [] and plan.already_set == 1
    else:
        [change] = plan.changes
        assert (change.store, change.previous_store) == (owner, named)
        assert change.metadata_update == {'store': owner}


def test_renamed_store_is_resolved_again(resolver):
    plan = resolver.plan([loc('file:///var/lib/glance/images2/b',
                              {'store': 'old-name'})])
    [change] = plan.changes
    assert change.store == 'slow' and change.previous_store == 'old-name'


@pytest.mark.parametrize('location, reason', [
    (loc('file:///nowhere/x'), lmap.NO_PREFIX),
    (loc('file:///../x'), lmap.INVALID_URL),
    (loc('swift+https://user:key@auth/c/o'), lmap.UNKNOWN_SCHEME),
    (loc('file:///var/lib/glance/images/a', None), None),
    ({'url': 'file:///var/lib/glance/images/a', 'metadata': None},
     resolver_mod.BAD_METADATA),
    ({'url': 'file:///var/lib/glance/images/a', 'metadata': '{"a": 1}'},
     resolver_mod.BAD_METADATA),
    ({'url': 'file:///var/lib/glance/images/a', 'metadata': ['store']},
     resolver_mod.BAD_METADATA),
    ({'url': None, 'metadata': {}}, resolver_mod.BAD_LOCATION),
    ({'metadata': {}}, resolver_mod.BAD_LOCATION),
    ('file:///var/lib/glance/images/a', resolver_mod.BAD_LOCATION),
    (None, resolver_mod.BAD_LOCATION),
])
def test_unresolvable_is_reported_with_reason(resolver, location, reason):
    plan = resolver.plan([location])
    if reason is None:
        assert [c.store for c in plan.changes] == ['fast']
        return
    [unresolved] = plan.unresolved
    assert unresolved.reason == reason and unresolved.index == 0
    assert plan.changes == []


def test_unresolved_url_is_masked(resolver):
    plan = resolver.plan([loc('file://user:sekrit@host/x')])
    [unresolved] = plan.unresolved
    assert 'sekrit' not in unresolved.url + unresolved.detail


INVALID_STORES = [123, ['fast'], {}, True, '', None, 1.5]


@pytest.mark.parametrize('value', INVALID_STORES, ids=repr)
def test_a_store_that_is_not_a_name_is_reported_and_left(resolver, value):
    # Someone's data, not a legacy location: never overwritten unasked.
    plan = resolver.plan([loc('file:///var/lib/glance/images/a',
                              {'store': value})])
    [unresolved] = plan.unresolved
    assert unresolved.reason == resolver_mod.INVALID_STORE
    assert '--replace-invalid-stores' in unresolved.detail
    assert plan.changes == [] and plan.already_set == 0


@pytest.mark.parametrize('value', INVALID_STORES, ids=repr)
def test_a_store_that_is_not_a_name_is_replaced_when_asked(resolver, value):
    resolver.replace_invalid_stores = True
    plan = resolver.plan([loc('file:///var/lib/glance/images/a',
                              {'store': value})])
    [change] = plan.changes
    assert change.store == 'fast' and change.previous_store is None


def test_metadata_that_is_not_an_object_says_why(resolver):
    bad = metadata_text.load('{"a": NaN}')
    plan = resolver.plan([{'url': 'file:///var/lib/glance/images/a',
                           'metadata': bad}])
    [unresolved] = plan.unresolved
    assert unresolved.reason == resolver_mod.BAD_METADATA
    assert 'not standard JSON' in unresolved.detail


def test_a_url_that_is_not_utf8_is_a_bad_location(resolver):
    plan = resolver.plan([{'url': b'file:///var/lib/glance/images/\xff',
                           'metadata': {}}])
    [unresolved] = plan.unresolved
    assert (unresolved.reason, unresolved.detail) == (
        resolver_mod.BAD_LOCATION, 'the URL is not valid UTF-8')


@pytest.mark.parametrize('locations, fix, may', [
    ([loc('file:///var/lib/glance/images/a', {'store': 'fast'})], False,
     False),
    ([loc('file:///var/lib/glance/images2/a', {'store': 'fast'})], False,
     False),
    ([loc('file:///var/lib/glance/images2/a', {'store': 'fast'})], True,
     True),
    ([loc('file:///var/lib/glance/images/a', {'store': 'fast'}),
      loc('file:///var/lib/glance/images2/b')], False, True),
    ([loc('file:///var/lib/glance/images/a', {'store': 'gone'})], False,
     True),
    # Nothing a plan could do: no prefix owns it, bad metadata or input.
    ([loc('file:///elsewhere/a')], False, False),
    ([{'url': 'file:///var/lib/glance/images/a', 'metadata': None}], False,
     False),
    ([None, 42], False, False), (42, False, False), ([], False, False),
])
def test_a_plan_changes_only_what_needs_a_store(
        resolver, locations, fix, may):
    resolver.fix_wrong_stores = fix
    assert bool(resolver.plan(locations).changes) is may


def test_locations_not_a_list(resolver):
    plan = resolver.plan(42)
    assert [u.reason for u in plan.unresolved] == [resolver_mod.BAD_LOCATION]
    assert resolver.plan(None).changes == []


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


# The resolver holds no state between calls, so sharing it is safe.
@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(locations=st.lists(
    st.one_of(JSONISH, st.fixed_dictionaries(
        {'url': st.one_of(st.text(max_size=40), JSONISH),
         'metadata': st.one_of(JSONISH, st.dictionaries(
             st.sampled_from(['store', 'x']), JSONISH, max_size=2))})),
    max_size=5))
def test_plan_never_raises_and_accounts_for_every_location(resolver,
                                                           locations):
    fixing = resolver_mod.Resolver(resolver.location_map,
                                   fix_wrong_stores=True)
    for plan in (resolver.plan(locations), fixing.plan(locations)):
        total = len(plan.changes) + len(plan.unresolved) + plan.already_set
        assert total == len(locations)
        for change in plan.changes:
            assert change.store in ('fast', 'slow')
