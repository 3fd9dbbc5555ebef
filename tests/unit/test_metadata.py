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


"""Location metadata text: strict reading, and changes spliced in place."""

import decimal
import json

from hypothesis import given
from hypothesis import strategies as st
import pytest

from multistore_prefix import metadata as metadata_text


@pytest.mark.parametrize('text, reason', [
    (None, 'meta_data is NULL'),
    ('nope', 'meta_data is not JSON'),
    ('', 'meta_data is not JSON'),
    ('[1]', 'meta_data is a JSON list, not an object'),
    ('"x"', 'meta_data is a JSON string, not an object'),
    ('12', 'meta_data is a JSON number, not an object'),
    ('null', 'meta_data is a JSON null, not an object'),
    ('{"a": NaN}', 'meta_data is not standard JSON (NaN is not standard '
                   'JSON)'),
    ('{"a": -Infinity}', 'meta_data is not standard JSON (-Infinity is '
                         'not standard JSON)'),
    ('{"a": 1} x', 'meta_data is not JSON'),
    ('{"a": 1,}', 'meta_data is not JSON'),
    ('{' * 2000 + '}' * 2000, 'meta_data is not JSON'),
    ('{"a": ' + '[' * 2000 + ']' * 2000 + '}',
     'meta_data is nested too deep to read'),
    (b'{"a": "\xff"}', 'meta_data is not valid UTF-8'),
])
def test_what_cannot_be_read_says_why(text, reason):
    bad = metadata_text.parse(text)
    assert isinstance(bad, metadata_text.Bad)
    assert str(bad) == reason


@pytest.mark.parametrize('text, expected', [
    ('{}', '{"store": "fast"}'),
    ('{ }', '{"store": "fast"}'),
    ('{"a": 1}', '{"a": 1, "store": "fast"}'),
    # Every other byte as it was: numbers Python would rewrite, duplicate
    # keys, spacing, order.
    ('{"a":1e400}', '{"a":1e400, "store": "fast"}'),
    ('{"a": 1, "a": 2}', '{"a": 1, "a": 2, "store": "fast"}'),
    ('{"n": ' + '9' * 5000 + '}', '{"n": ' + '9' * 5000 + ', "store": '
                                                          '"fast"}'),
    (' {"k" : "v" } ', ' {"k" : "v", "store": "fast" } '),
    ('{"store": 1, "x": [1,2]}', '{"store": "fast", "x": [1,2]}'),
    ('{"x": {"store": "in"}, "store": "old"}',
     '{"x": {"store": "in"}, "store": "fast"}'),
    ('{"\\u00e9": "\\ud800"}', '{"\\u00e9": "\\ud800", "store": "fast"}'),
])
def test_store_is_spliced_in(text, expected):
    members = metadata_text.parse(text)
    new = metadata_text.patch(members, {'store': 'fast'})
    assert new == expected
    again = metadata_text.parse(new)
    assert again.value('store') == 'fast'


def test_a_key_that_stands_twice_is_not_changed():
    members = metadata_text.parse('{"store": "a", "store": "b"}')
    with pytest.raises(ValueError, match='twice'):
        metadata_text.patch(members, {'store': 'fast'})


@pytest.mark.parametrize('text, expected', [
    ('{"a": 1, "store": "x", "b": 2}', '{"a": 1, "b": 2}'),
    ('{"store": "x", "b": 2}', '{"b": 2}'),
    ('{"b": 2, "store": "x"}', '{"b": 2}'),
    ('{"store": "x"}', '{}'),
    ('{"b": 2}', '{"b": 2}'),
])
def test_a_key_is_cut_out_with_its_comma(text, expected):
    members = metadata_text.parse(text)
    assert metadata_text.patch(members, {'store': metadata_text.DELETE}) == \
        expected


def test_new_values_are_standard_json():
    with pytest.raises(ValueError):
        metadata_text.patch(metadata_text.parse('{}'), {'x': float('nan')})
    with pytest.raises(ValueError):
        metadata_text.dump({'x': float('inf')})


def test_load_reads_any_number_and_keeps_bad_text_as_a_reason():
    # Past Python's 4300-digit limit for int().
    assert metadata_text.load('{"n": ' + '7' * 5000 + '}')['n'] == \
        decimal.Decimal('7' * 5000)
    bad = metadata_text.load('{"a": NaN}')
    assert isinstance(bad, metadata_text.Bad) and bad.text == '{"a": NaN}'
    assert bad != metadata_text.load('{"b": NaN}')  # another text
    assert bad == metadata_text.load('{"a": NaN}')


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)


@given(obj=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5),
       store=st.text(min_size=1, max_size=10),
       indent=st.sampled_from([None, 1, 4]),
       separators=st.sampled_from([None, (',', ':'), (' , ', ' : ')]))
def test_splicing_keeps_every_other_member_byte_for_byte(obj, store, indent,
                                                         separators):
    text = json.dumps(obj, indent=indent, separators=separators)
    members = metadata_text.parse(text)
    new = metadata_text.patch(members, {'store': store})
    after = metadata_text.parse(new)
    assert not isinstance(after, metadata_text.Bad)
    assert json.loads(new) == {**obj, 'store': store}
    kept = {m.key: text[m.value_start:m.value_end]
            for m in members.members if m.key != 'store'}
    assert {m.key: new[m.value_start:m.value_end]
            for m in after.members if m.key != 'store'} == kept
