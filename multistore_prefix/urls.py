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

"""Canonical location URLs: the one place that says what "the same" means.

Every other module compares URLs through :func:`canonicalize` (and prints
them through :mod:`multistore_prefix.masking`).  The rules (see DESIGN.md):

* scheme and host compare case-insensitively; the default port of the
  scheme drops; IPv6 hosts keep their brackets;
* credentials (``user:key@``) are taken out and never take part in a match;
  in s3 and swift URLs, whose legacy keys may hold ``/``, they run to the
  last ``@``, as glance_store reads them;
* percent-encoded unreserved characters decode, other escapes keep their
  meaning (``%2F`` stays data, never a separator) with upper-case hex;
* ``.`` and ``..`` segments resolve; a path that climbs above its root is
  invalid; empty segments and a trailing ``/`` drop;
* the query is kept apart: a driver that needs it (vSphere's ``dsName``)
  reads it, everybody else ignores it; the fragment drops.
"""

import dataclasses
import re
import urllib.parse

from multistore_prefix import masking

# Ports that a scheme implies; written out explicitly they are dropped.
DEFAULT_PORTS = {
    'http': '80', 'https': '443',
    'swift': '443', 'swift+http': '80', 'swift+https': '443',
    's3+http': '80', 's3+https': '443',
    'vsphere': '443',
}

FILE_SCHEMES = frozenset(('file', 'filesystem'))

# Legacy s3 and swift URLs carry raw keys, and keys may hold '/': as
# glance_store does, the credentials there run to the URL's last '@'.
RAW_KEY_SCHEMES = frozenset(('s3', 's3+http', 's3+https', 'swift',
                             'swift+http', 'swift+https', 'swift+config'))

_UNRESERVED = frozenset(
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~')
_PCT = re.compile(r'%(..)?', re.DOTALL)
_HEX = frozenset('0123456789abcdefABCDEF')
_SCHEME = re.compile(r'[A-Za-z][A-Za-z0-9+.\-]*\Z')


class InvalidURL(ValueError):
    """A URL that cannot be put in canonical form; ``url`` is masked."""

    def __init__(self, url, reason: str):
        self.url = masking.mask_url(url)
        self.reason = reason
        super().__init__(f'{self.url}: {reason}')


@dataclasses.dataclass(frozen=True, slots=True)
class CanonicalURL:
    """A location URL in canonical form (see the module's rules).

    :ivar scheme: lower case, as written (one of its type's aliases).
    :ivar authority: ``host[:port]`` with no credentials; ``''`` when the
        URL has none (``file:///...``).
    :ivar path: ``''`` for the root.
    :ivar query: the raw query string.
    """

    scheme: str
    authority: str
    path: str
    query: str = ''
    has_credentials: bool = False

    @property
    def key(self) -> str:
        """What prefixes match: the URL without query and credentials."""
        return f'{self.scheme}://{self.authority}{self.path}'

    @property
    def segments(self) -> list[str]:
        return self.path.split('/')[1:] if self.path else []

    def query_params(self) -> dict[str, str]:
        """The query as a dict; the first value of a repeated name wins."""
        params: dict[str, str] = {}
        for name, value in urllib.parse.parse_qsl(self.query,
                                                  keep_blank_values=True):
            params.setdefault(name, value)
        return params


def _normalize_escapes(text: str, url: str) -> str:
    def repl(match):
        hexdigits = match.group(1)
        if hexdigits is None or not set(hexdigits) <= _HEX:
            raise InvalidURL(url, 'malformed percent-encoding')
        char = chr(int(hexdigits, 16))
        return char if char in _UNRESERVED else '%' + hexdigits.upper()
    return _PCT.sub(repl, text)


def _normalize_path(path: str, url: str) -> str:
    out: list[str] = []
    for segment in path.split('/'):
        if '%' in segment:
            segment = _normalize_escapes(segment, url)
        if segment == '' or segment == '.':
            continue
        if segment == '..':
            if not out:
                raise InvalidURL(url, 'path climbs above its root')
            out.pop()
            continue
        out.append(segment)
    return '/' + '/'.join(out) if out else ''


def _normalize_authority(scheme: str, authority: str, url: str) -> str:
    if '%' in authority:
        authority = _normalize_escapes(authority, url)
    if authority.startswith('['):
        end = authority.find(']')
        if end < 0:
            raise InvalidURL(url, 'unterminated IPv6 address')
        host, rest = authority[:end + 1], authority[end + 1:]
        if rest and not rest.startswith(':'):
            raise InvalidURL(url, 'junk after IPv6 address')
        port = rest[1:] if rest else None
    elif authority.count(':') > 1:
        raise InvalidURL(url, 'IPv6 address without brackets')
    else:
        host, sep, port = authority.partition(':')
        port = port if sep else None
    host = host.lower()
    if port is not None:
        if port == '':
            port = None
        elif not port.isdigit() or not port.isascii():
            # Never quoted: with a key that holds '/', this is part of it.
            raise InvalidURL(url, 'bad port (not a number)')
        else:
            port = str(int(port))
            if DEFAULT_PORTS.get(scheme) == port:
                port = None
    return f'{host}:{port}' if port else host


def canonicalize(url: str) -> CanonicalURL:
    """:raises InvalidURL: ``url`` cannot be parsed."""
    if not isinstance(url, str):
        raise InvalidURL(url, f'not a string but {type(url).__name__}')
    sep = url.find('://')
    if sep <= 0:
        raise InvalidURL(url, 'no scheme:// part')
    scheme = url[:sep]
    if not _SCHEME.match(scheme):
        raise InvalidURL(url, f'bad scheme {scheme!r}')
    scheme = scheme.lower()
    rest = url[sep + 3:]
    at = ''
    if scheme in RAW_KEY_SCHEMES and '@' in rest:
        _userinfo, at, rest = rest.rpartition('@')
    rest, _, _fragment = rest.partition('#')
    rest, _, query = rest.partition('?')
    slash = rest.find('/')
    if slash < 0:
        authority, path = rest, ''
    else:
        authority, path = rest[:slash], rest[slash:]
    if not at:
        _userinfo, at, hostport = authority.rpartition('@')
    else:
        hostport = authority
    if any(c.isspace() for c in hostport):
        raise InvalidURL(url, 'white space in the host')
    hostport = _normalize_authority(scheme, hostport, url)
    if hostport == 'localhost' and scheme in FILE_SCHEMES:
        hostport = ''  # RFC 8089: file://localhost/p is file:///p
    return CanonicalURL(
        scheme=scheme,
        authority=hostport,
        path=_normalize_path(path, url),
        query=query,
        has_credentials=bool(at))


# The schemes glance_store's s3 driver writes.
S3_SCHEMES = ('s3://', 's3+http://', 's3+https://')


def s3_without_credentials(url) -> str | None:
    """An S3 URL that carries credentials, rewritten as Glance 33 does.

    Glance (``store_utils._update_s3_location_credentials``) keeps what
    follows the last ``@`` before the query, without query and fragment,
    behind the scheme; glance_store then signs with the store's own keys.
    ``None`` when the URL has no credentials (or is not an S3 URL).
    """
    if url.__class__ is not str or '@' not in url or not url.startswith(
            S3_SCHEMES):
        return None
    bare = url.split('?')[0].split('#')[0]
    at = bare.rfind('@')
    if at < 0:
        return None
    return f'{urllib.parse.urlparse(url).scheme}://{bare[at + 1:]}'
