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

"""Credentials out of everything printed: URLs and text that quotes them."""

import functools
import re
import urllib.parse

MASK = '***'

_CREDENTIALS = re.compile(r'^([A-Za-z][A-Za-z0-9+.\-]*://)?([^/?#]*)@')
_DATABASE = re.compile(r'(mysql|mariadb|postgres(ql)?|sqlite)(\+[\w.]+)?://',
                       re.IGNORECASE)
_URL_START = re.compile(r'[A-Za-z][A-Za-z0-9+.\-]*://')
_TOKEN_END = re.compile(r'[\s\'"<>]')
# Punctuation that ends a sentence rather than the URL before it.
_TRAILING = '.,;:!?)]}'
_KEY_START = re.compile(r'[^/\s]*')
_QUOTED_USERINFO = re.compile(r"""(['"])([^'"\s/]+)@([^'"\s@]+)\1""")
_PARAM_WORDS = re.compile(r'[-_.\s]+')
# What every credential parameter name holds (or an escape that may hide
# it), in lower case; a query without any needs no closer look.
_SECRET_HINT = re.compile('sig|token|cred|pass|pwd|secret|key|auth|%')
# Query parameter names (or words of them) that carry a credential.
_SECRET_WORDS = frozenset((
    'sig', 'signature', 'token', 'credential', 'credentials', 'password',
    'passwd', 'pwd', 'secret', 'key', 'apikey', 'auth', 'authorization'))
_SECRET_SUFFIXES = ('sig', 'signature', 'token', 'credential', 'credentials',
                    'password', 'passwd', 'secret', 'key', 'keyid')


def mask_url(url) -> str:
    """``url`` with every credential in it masked; never raises.

    For every URL that reaches output, a log line, a report or an exception
    message.  ``user:key@`` becomes ``***@``: legacy s3 and swift keys may
    hold ``/``, ``?``, ``#`` or white space (and glance_store reads them up
    to the last ``@``), so in a URL with an authority, everything up to the
    last ``@`` goes when a ``:`` comes before it; masking a path that has
    both is the safe way to be wrong.  A database URL keeps its user name,
    ``user:***@``, as :attr:`~multistore_prefix.db.engine.Database.
    safe_url` shows it: masked again, it reads the same in every line.
    Query and fragment parameters that carry a credential keep their name
    and lose their value.
    """
    if not isinstance(url, str):
        url = repr(url)
    if '@' in url:
        url = _mask_userinfo(url)
    if '?' in url or '#' in url:
        url = mask_parameters(url)
    return url


def _mask_userinfo(url: str) -> str:
    sep = url.find('://')
    if sep > 0:
        start = sep + 3
        if url.startswith('/', start):
            return url  # no authority (file:///...), so no credentials
        at = url.rfind('@', start)
        user, colon, key = url[start:at].partition(':')
        if at > 0 and _DATABASE.match(url):
            # A database's user name is no secret, and the operator needs
            # it: its password alone goes.
            return (f'{url[:start]}{user}:{MASK}{url[at:]}' if colon
                    else url)
        if colon:
            return f'{url[:start]}{MASK}{url[at:]}'
    return _CREDENTIALS.sub(
        lambda m: (m.group(1) or '') + MASK + '@', url, count=1)


# A few names recur in millions of URLs (vSphere's dcPath, dsName).
@functools.lru_cache(maxsize=1024)
def secret_parameter(name: str) -> bool:
    """Whether a query parameter named ``name`` carries a credential.

    One of its words, or its words run together, says so (pre-signed URLs'
    ``X-Amz-Signature``, ``AWSAccessKeyId``, swift's ``temp_url_sig``,
    ``access_token``, libpq's ``password``).  Errs towards masking.
    """
    words = [w for w in _PARAM_WORDS.split(
        urllib.parse.unquote(name).lower()) if w]
    return (any(w in _SECRET_WORDS for w in words)
            or ''.join(words).endswith(_SECRET_SUFFIXES))


def mask_parameters(url: str) -> str:
    """``url`` with the values of its credential parameters masked."""
    query = url.find('?')
    fragment = url.find('#', max(query, 0))
    if not _SECRET_HINT.search(url[query if query >= 0 else fragment:]
                               .lower()):
        return url  # the common case, vSphere's dcPath and dsName
    if fragment < 0:
        fragment = len(url)
    parts = [url[:query] if query >= 0 else url[:fragment]]
    if query >= 0:
        parts.append('?' + _mask_pairs(url[query + 1:fragment]))
    if fragment < len(url):
        parts.append('#' + _mask_pairs(url[fragment + 1:]))
    return ''.join(parts)


def _mask_pairs(text: str) -> str:
    pairs = text.split('&')
    for index, pair in enumerate(pairs):
        name, equals, value = pair.partition('=')
        if equals and value and secret_parameter(name):
            pairs[index] = f'{name}={MASK}'
    return '&'.join(pairs)


def mask_text(text) -> str:
    """``text`` with the credentials of every URL in it masked.

    A URL runs to white space or a quote, unless it has credentials that
    hold some (``s3://access:se cret@host/...``): then it runs to the
    last ``@`` of its line (before the next URL).  A quoted ``user@host``
    loses its user too: a driver names the host that way, and SQLAlchemy
    takes the tail of a password with a raw ``@`` for the host.
    """
    if not isinstance(text, str):
        text = str(text)
    if '://' in text:
        text = _mask_urls(text)
    if '@' in text:
        text = _QUOTED_USERINFO.sub(rf'\1{MASK}@\3\1', text)
    return text


def _mask_urls(text: str) -> str:
    out, pos = [], 0
    for match in _URL_START.finditer(text):
        start = match.start()
        if start < pos:
            continue  # inside the URL before
        end = _token_end(text, match.end())
        at = _spaced_credentials(text, match.end(), end)
        if at > end:
            end = _token_end(text, at)
        token = text[start:end].rstrip(_TRAILING)
        out += [text[pos:start], mask_url(token)]
        pos = start + len(token)
    out.append(text[pos:])
    return ''.join(out)


def _token_end(text: str, start: int) -> int:
    match = _TOKEN_END.search(text, start)
    return match.start() if match else len(text)


def _spaced_credentials(text: str, body: int, end: int) -> int:
    """Where credentials with white space or quotes end (past the ``@``).

    -1 unless ``user:key`` starts the authority (no ``/`` before the
    ``:``, a key that is not a port number) and the last ``@`` of the
    line lies beyond the plain token that ends at ``end``.
    """
    line_end = text.find('\n', body)
    line_end = len(text) if line_end < 0 else line_end
    following = _URL_START.search(text, body, line_end)
    limit = following.start() if following else line_end
    at = text.rfind('@', body, limit)
    colon = text.find(':', body, max(at, body))
    if at < end or colon < 0 or '/' in text[body:colon]:
        return -1
    key = _KEY_START.match(text, colon + 1).group(0)
    if not key or key.isdigit() or key.startswith(MASK + '@'):
        # No key, a port, or one masked already: an '@' further on is
        # the driver's ("Access denied for user 'glance'@'10.0.0.5'").
        return -1
    return at + 1


def mask_error(exc: BaseException) -> str:
    """An error in one line: the driver's own words, credentials masked.

    For log lines and one-line messages: a database driver's message may
    quote a connection URL; its later lines (SQL, hints) are left out.
    """
    inner = getattr(exc, 'inner_exception', None) or exc
    inner = getattr(inner, 'orig', None) or inner
    lines = [line.strip() for line in str(inner).splitlines()
             if line.strip()]
    return mask_text(lines[0] if lines else type(inner).__name__)
