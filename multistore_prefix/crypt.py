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

"""Location URLs Glance stored encrypted (``metadata_encryption_key``).

With ``[DEFAULT]/metadata_encryption_key`` set, Glance writes some
locations' ``value`` as AES-CBC ciphertext in URL-safe base64 (a random
16-byte IV first; the text ends at the last zero byte, random padding
after it): only through some of its APIs, so one database holds both
forms.  The format is Glance's (``glance/common/crypt.py``); this module
reads and writes it with the ``cryptography`` library.  The key never
appears in a message.
"""

import base64
import binascii
import os

from oslo_config import cfg

from multistore_prefix import exceptions

# The option as Glance defines it: either may register it first.
KEY_OPT = cfg.StrOpt(
    'metadata_encryption_key', secret=True,
    help='Glance\'s AES key (16, 24 or 32 bytes) for location URLs it '
         'stored encrypted; the same value as in glance-api.conf.')
OPTION = '[DEFAULT]/metadata_encryption_key'


def from_config(conf: cfg.ConfigOpts) -> 'UrlCipher | None':
    """The cipher of the configuration's key, or ``None`` (none set).

    :raises OptionError: the key is no AES key.
    """
    try:
        conf.register_opt(KEY_OPT)
    except cfg.DuplicateOptError:
        pass  # Glance's own definition, inside glance-api
    key = conf.metadata_encryption_key
    return UrlCipher(key) if key else None


class UrlCipher:
    """Glance's encryption of location URLs, with one key.

    ``tried`` counts the values given to :meth:`decrypt`, ``decrypted``
    those the key turned into a URL.
    """

    def __init__(self, key: str):
        self._key = key.encode('utf-8')
        if len(self._key) not in (16, 24, 32):
            raise exceptions.OptionError(
                OPTION, f'is {len(self._key)} bytes long; an AES key is 16, '
                        f'24 or 32 bytes: set the key glance-api uses')
        self.tried = 0
        self.decrypted = 0

    def __repr__(self):
        return '<UrlCipher ***>'

    def _cipher(self, iv: bytes):
        # Imported here: only deployments with a key need the library.
        from cryptography.hazmat.primitives.ciphers import algorithms
        from cryptography.hazmat.primitives.ciphers import Cipher
        from cryptography.hazmat.primitives.ciphers import modes
        return Cipher(algorithms.AES(self._key), modes.CBC(iv))

    def decrypt(self, value: str) -> str | None:
        """The URL ``value`` holds encrypted by this key, or ``None``."""
        self.tried += 1
        try:
            raw = base64.urlsafe_b64decode(value.encode('ascii'))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return None
        if len(raw) < 32 or len(raw) % 16:
            return None
        decryptor = self._cipher(raw[:16]).decryptor()
        padded = decryptor.update(raw[16:]) + decryptor.finalize()
        end = padded.rfind(b'\0')
        try:
            text = padded[:end].decode('utf-8')
        except UnicodeDecodeError:
            return None
        if end < 0 or not is_plain_url(text):
            return None
        self.decrypted += 1
        return text

    def check(self) -> None:
        """After values were read: the key decrypted one, if any was tried.

        :raises OptionError: it decrypted none of them (another key).
        """
        if self.tried and not self.decrypted:
            raise exceptions.OptionError(OPTION, (
                f'decrypts none of the {self.tried} location URLs stored '
                f'encrypted that were read: it is not the key glance-api '
                f'wrote them with; set that one'))

    def encrypt(self, url: str) -> str:
        """``url`` encrypted as Glance writes it (a new random IV)."""
        text = url.encode('utf-8')
        pad_length = 16 - len(text) % 16
        # Zero ends the text, so the padding after it has none.
        padding = bytes(b % 255 + 1 for b in os.urandom(pad_length - 1))
        iv = os.urandom(16)
        encryptor = self._cipher(iv).encryptor()
        body = encryptor.update(text + b'\0' + padding) + encryptor.finalize()
        return base64.urlsafe_b64encode(iv + body).decode('ascii')


def is_plain_url(value) -> bool:
    """Whether a stored ``value`` reads as a URL (not ciphertext).

    URL-safe base64 has no ``:`` or ``/``, so a ciphertext never does.
    """
    return value.__class__ is str and '://' in value
