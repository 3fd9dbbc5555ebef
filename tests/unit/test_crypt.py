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

"""Glance's encrypted location URLs.

tests/glance_compat/test_glance_encrypted.py checks the format against
Glance's own ``crypt`` and repository.
"""

from hypothesis import given
from hypothesis import strategies as st
import pytest

from multistore_prefix import crypt
from multistore_prefix import exceptions

KEY = '0123456789abcdef'


@given(st.text(min_size=1).map(lambda path: f'file:///{path}'))
def test_what_it_encrypts_it_decrypts(url):
    cipher = crypt.UrlCipher(KEY)
    encrypted = cipher.encrypt(url)
    assert not crypt.is_plain_url(encrypted)
    assert cipher.decrypt(encrypted) == url
    # A new IV each time, as Glance's.
    assert cipher.encrypt(url) != encrypted


@pytest.mark.parametrize('value', [
    'bm90IGEgY2lwaGVydGV4dA==', 'not base64!', '', 'é',
    crypt.UrlCipher('fedcba9876543210').encrypt('file:///a/b'),
])
def test_what_it_does_not_decrypt_is_none_and_counted(value):
    cipher = crypt.UrlCipher(KEY)
    assert cipher.decrypt(value) is None
    assert (cipher.tried, cipher.decrypted) == (1, 0)
    with pytest.raises(exceptions.OptionError) as caught:
        cipher.check()
    assert '[DEFAULT]/metadata_encryption_key' in str(caught.value)
    assert KEY not in str(caught.value)


def test_one_decrypted_value_shows_the_key_is_right():
    cipher = crypt.UrlCipher(KEY)
    cipher.decrypt('garbage')
    cipher.decrypt(cipher.encrypt('rbd://fsid/pool/image/snap'))
    cipher.check()


def test_a_key_of_the_wrong_length_names_the_option_never_the_key(
        make_conf):
    conf = make_conf('[DEFAULT]\nmetadata_encryption_key = short-secret\n')
    with pytest.raises(exceptions.OptionError) as caught:
        crypt.from_config(conf)
    assert str(caught.value).startswith('[DEFAULT]/metadata_encryption_key')
    assert 'short-secret' not in str(caught.value)
    assert KEY not in repr(crypt.UrlCipher(KEY))
    assert crypt.from_config(make_conf('[DEFAULT]\n')) is None
