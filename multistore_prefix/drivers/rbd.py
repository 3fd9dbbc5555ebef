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
option is empty).  Without an fsid the store still owns its pool, under any
fsid, and a warning says so: two such stores on one pool name are a
conflict.  fsid and pool are quoted the way glance_store quotes them.

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

#: Where librados looks when rbd_store_ceph_conf is empty ($CEPH_CONF
#: first), short of its working directory.
DEFAULT_CEPH_CONFS = ('/etc/ceph/ceph.conf', '~/.ceph/config')


class RbdDriver(base.Driver):
    """Claims ``rbd://<fsid>/<pool>``, or the pool under any fsid."""

    glance_store_entry = 'rbd'

    def compute_prefixes(self) -> list[base.Prefix]:
        pool = self.require('rbd_store_pool',
                            'set it to the Ceph pool that holds the images')
        path = '/' + urllib.parse.quote(pool, '')
        fsid, why = self.read_fsid()
        if fsid is None:
            LOG.warning('Store %s: %s; its rbd locations are matched on '
                        'pool %r under any cluster fsid', self.store_id, why,
                        pool)
            return [base.Prefix('rbd', None, path)]
        return [base.Prefix('rbd', urllib.parse.quote(fsid, ''), path)]

    def unowned(self, canon) -> tuple[str, str] | None:
        """The single-store form ``rbd://<image>`` names no store."""
        if canon.path or canon.query or canon.has_credentials:
            return None
        return (base.NO_STORE_IN_URL,
                'an rbd://<image> location (glance_store\'s single-store '
                'form) names neither cluster fsid nor pool, so no store can '
                'be told from it; set its store by hand')

    def ceph_conf(self) -> str | None:
        """The ceph.conf librados would read for this store, if any."""
        configured = self.option('rbd_store_ceph_conf')
        if configured and configured.strip():
            return os.path.expanduser(configured.strip())
        candidates = [os.environ.get('CEPH_CONF')] + list(DEFAULT_CEPH_CONFS)
        for candidate in filter(None, candidates):
            candidate = os.path.expanduser(candidate)
            if os.path.isfile(candidate):
                return candidate
        return None

    def read_fsid(self) -> tuple[str | None, str]:
        """(fsid or ``None``, why there is none) from the store's ceph.conf."""
        path = self.ceph_conf()
        if path is None:
            return None, ('rbd_store_ceph_conf is empty and no ceph.conf '
                          'was found where librados looks')
        try:
            with open(path, encoding='utf-8') as stream:
                # ceph.conf indents its keys; configparser would read an
                # indented line as the continuation of the one above.
                text = '\n'.join(line.strip() for line in stream)
        except OSError as exc:
            return None, f'{path} cannot be read ({exc.strerror})'
        except UnicodeDecodeError:
            return None, f'{path} is not UTF-8 text'
        parser = configparser.RawConfigParser(
            strict=False, comment_prefixes=('#', ';'),
            inline_comment_prefixes=('#', ';'))
        try:
            parser.read_string(text, source=path)
        except configparser.MissingSectionHeaderError:
            return None, f'{path} is not a ceph.conf (no [section] first)'
        except configparser.ParsingError:
            pass  # the lines that parsed are kept; fsid is all we need
        fsid = parser.get('global', 'fsid', fallback='').strip().strip('"\'')
        if not fsid:
            return None, f'{path} has no fsid in [global]'
        return fsid, ''
