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

"""RBD stores: ``rbd://<fsid>/<pool>/<image>/<snapshot>``.

glance_store asks the Ceph cluster for its fsid; this driver must not
connect, so it reads ``fsid`` from the ``[global]`` section of
``rbd_store_ceph_conf`` (or of the file librados would read when that
option is empty).  A ceph.conf that is named but cannot be read (missing,
unreadable, a directory, not text) is a configuration error: guessing
would give another cluster's images to this store.  A readable ceph.conf
with no fsid (or none at all where librados looks) leaves the fsid truly
unknown: the store then claims its pool under any fsid, but only while no
other store uses that pool; otherwise such URLs stay unresolved
(``missing-fsid``).  fsid and pool are quoted the way glance_store quotes
them.

Old single-store locations, ``rbd://<image>``, name no cluster and no
pool: no store can be told from them, and they stay unresolved with a
reason that says so.
"""

import configparser
import logging
import os
import urllib.parse

from multistore_prefix.drivers import base

LOG = logging.getLogger(__name__)

# Where librados looks when rbd_store_ceph_conf is empty ($CEPH_CONF
# first), short of its working directory.
DEFAULT_CEPH_CONFS = ('/etc/ceph/ceph.conf', '~/.ceph/config')
# The reason of a URL that only the fsid the store lacks could give it.
MISSING_FSID = 'missing-fsid'

_OPTION = 'rbd_store_ceph_conf'
_FIX = ('point rbd_store_ceph_conf at the ceph.conf of the store\'s cluster, '
        'readable by this user')


class RbdDriver(base.Driver):
    glance_store_entry = 'rbd'

    def compute_prefixes(self) -> list[base.Prefix]:
        pool = self.require('rbd_store_pool',
                            'set it to the Ceph pool that holds the images')
        path = '/' + urllib.parse.quote(pool, '')
        conf_path, name = self.ceph_conf()
        if conf_path is None:
            fsid, why = None, ('rbd_store_ceph_conf is empty and no '
                               'ceph.conf was found where librados looks')
        else:
            fsid, why = self.read_fsid(conf_path, name)
        if fsid is not None:
            return [base.Prefix('rbd', urllib.parse.quote(fsid, ''), path)]
        LOG.warning('Store %s: %s; its rbd locations are matched on pool %r '
                    'under any cluster fsid, while no other rbd store uses '
                    'that pool', self.store_id, why, pool)
        fix = (f'add "fsid = <the cluster fsid>" to [global] in {conf_path}'
               if conf_path else f'set {_OPTION} in [{self.store_id}]')
        return [base.Prefix('rbd', None, path, doubt=base.Doubt(
            MISSING_FSID, f'store {self.store_id} has no cluster fsid '
            f'({why})', f'pool {pool!r}', fix))]

    def unowned(self, canon) -> tuple[str, str] | None:
        if canon.path or canon.query or canon.has_credentials:
            return None
        return (base.NO_STORE_IN_URL,
                'an rbd://<image> location (glance_store\'s single-store '
                'form) names neither cluster fsid nor pool, so no store can '
                'be told from it; set its store by hand')

    def ceph_conf(self) -> tuple[str | None, str]:
        """(ceph.conf librados would read or ``None``, how to name it).

        The name is the path, and why librados reads it when
        ``rbd_store_ceph_conf`` does not name it.
        """
        configured = self.option(_OPTION)
        if configured:
            path = os.path.expanduser(configured)
            return path, path
        from_env = (os.environ.get('CEPH_CONF') or '').strip()
        if from_env:
            path = os.path.expanduser(from_env)
            return path, f'{path} (from $CEPH_CONF, as {_OPTION} is empty)'
        for candidate in DEFAULT_CEPH_CONFS:
            path = os.path.expanduser(candidate)
            if os.path.lexists(path):
                return path, (f'{path} (where librados looks, as {_OPTION} '
                              f'is empty)')
        return None, ''

    def read_fsid(self, path: str, name: str) -> tuple[str | None, str]:
        """(fsid or ``None``, why there is none) from a ceph.conf.

        :raises StoreConfigError: naming ``rbd_store_ceph_conf`` and the
            file's ``name`` (see :meth:`ceph_conf`): it is missing,
            unreadable, a directory, not text, or not a ceph.conf.
        """
        def unusable(what):
            return self.error(_OPTION, f'{name} {what}', _FIX)

        if os.path.isdir(path):
            raise unusable('is a directory')
        try:
            with open(path, encoding='utf-8') as stream:
                text = stream.read()
        except FileNotFoundError:
            raise unusable('does not exist') from None
        except OSError as exc:
            raise unusable(f'cannot be read ({exc.strerror})') from None
        except UnicodeDecodeError:
            raise unusable('is not text (not UTF-8)') from None
        if '\0' in text:
            raise unusable('is not text (NUL bytes)')
        parser = configparser.RawConfigParser(
            strict=False, comment_prefixes=('#', ';'),
            inline_comment_prefixes=('#', ';'))
        try:
            # ceph.conf indents its keys; configparser would read an
            # indented line as the continuation of the one above.
            parser.read_string('\n'.join(line.strip()
                                         for line in text.splitlines()),
                               source=path)
        except configparser.MissingSectionHeaderError:
            raise unusable('is not a ceph.conf (an option before any '
                           '[section])') from None
        except configparser.ParsingError:
            pass  # the lines that parsed are kept; fsid is all we need
        fsid = parser.get('global', 'fsid', fallback='').strip().strip('"\'')
        if not fsid:
            return None, f'{path} has no fsid in [global]'
        return fsid, ''
