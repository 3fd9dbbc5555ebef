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

"""The glance-api filter: resolve the image a request names, before Glance.

A Paste Deploy filter (``filter_factory``, also the ``paste.filter_factory``
entry point ``multistore_prefix``).  For every request whose path names one
image (``/v2/images/{id}`` and below, ``/v2/cache/{id}``) it decides that
image's live location rows with the backfill's rules as Glance would read
them (:mod:`multistore_prefix.deciding`, ``glance_rules``) and writes the
stores compare-and-swap; then Glance's own rule (first ``startswith``
wins, then a whole-image save) finds nothing to do.  After a request that
may add locations it checks again, once Glance has answered and before the
response goes out, since Glance's rule labels every location it adds.

Its options are in ``[multistore_prefix]`` of glance-api.conf, read from
the global ``cfg.CONF`` Glance has parsed.  It never breaks a request:
whatever fails is one log line, and the request goes on.

uWSGI (and mod_wsgi) load the application once and fork the workers from
it, so nothing that holds a connection or a thread is made before the
first request of each process (:class:`Worker`).  A resolution runs in a
small pool of the process's own threads, so the request waits at most
``request_timeout`` for it, whatever the database or a backend does.
"""

import concurrent.futures
import logging
import os
import re
import sys
import threading
import time

from oslo_config import cfg
from oslo_db import options as db_options

from multistore_prefix.db import exceptions as db_exc
from multistore_prefix import deciding
from multistore_prefix import exceptions
from multistore_prefix import gateway as gateway_mod
from multistore_prefix import location_map as lmap
from multistore_prefix import masking

LOG = logging.getLogger('multistore_prefix.middleware')

# The filter's options; others of the group belong to the modules that
# read them.
GROUP = 'multistore_prefix'
FILTER_OPTS = [
    cfg.BoolOpt(
        'fix_wrong_stores', default=True,
        help='glance-api filter: also correct a location that names an '
             'enabled store whose own directories or prefixes do not hold '
             'its URL while another store\'s do (Glance\'s first-match '
             'rule gives ".../images2/x" to the store of ".../images", and '
             'labels so every location added later), as "multistore-prefix '
             'backfill --fix-wrong-stores" does, on every request naming '
             'the image and again after a request that may add locations.  '
             'On by default: a wrong label makes "DELETE /v2/stores/'
             '{store}/{image}" delete the data of the location that only '
             'carries it.  A name is called wrong only when that is '
             'certain: nested directories and URLs that no store owns keep '
             'their name.'),
    cfg.BoolOpt(
        'backend_lookups', default=True,
        help='glance-api filter: ask the store\'s backend about legacy URLs '
             'that no prefix owns (cinder://<volume id>: Cinder says the '
             'volume type, as Glance itself does on GET).  False: resolve '
             'by prefix only, never touch the network.'),
    cfg.FloatOpt(
        'backend_lookup_timeout', default=3.0, min=0.1,
        help='glance-api filter: seconds a store\'s backend has to answer '
             'about one URL, retries included.  Keep it below '
             'request_timeout.'),
    cfg.FloatOpt(
        'request_timeout', default=5.0, min=0.1,
        help='glance-api filter: seconds it may spend on one request before '
             'it hands the request to Glance unchanged (one warning line '
             'says so); the work it gave up on then writes nothing '
             '(unless its write was already waiting for a lock), and '
             'Glance\'s own rule runs for that request.  At most a few '
             'resolutions run at once per process; requests beyond them '
             'pass through untouched.'),
]

_UUID = ('[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
         '[0-9a-fA-F]{12}')
# Before version negotiation the path may carry a minor version (v2.15).
_IMAGE_PATH = re.compile(
    rf'/v2(?:\.[0-9]+)?/(?:images|cache)/({_UUID})(?:/|$)')
# CORS preflights never load the image.
_SKIPPED_METHODS = frozenset(('OPTIONS',))
# Requests that may add or replace an image's locations (PATCH of the
# image, the Location API, upload, import).
_WRITING_METHODS = frozenset(('PATCH', 'POST', 'PUT'))
#: Resolutions in flight at once in one process; a request that finds them
#: all busy (a database that stopped answering) passes through at once.
MAX_RUNNING = 4
#: Rows left alone are logged once per process; at most this many are
#: remembered (then the memory starts over).
LOGGED_ROWS = 10000


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(FILTER_OPTS, group=GROUP)


def register_database_opts(conf: cfg.ConfigOpts) -> None:
    """oslo.db's ``[database]`` options, as Glance registers them.

    Never the command's embedded default: the filter writes Glance's rows.
    """
    conf.register_opts(db_options.database_opts, group='database')


def glance_strips_s3_credentials() -> bool:
    """Whether the running Glance takes credentials out of S3 URLs on get.

    Asked of Glance itself (2026.2 has the function that does it, and
    calls it from its rule), never guessed from a version: an older Glance
    signs with the keys in the URL, so they must stay there.
    """
    try:
        from glance.common import store_utils
    except ImportError:
        return False
    return callable(getattr(store_utils, '_update_s3_location_credentials',
                            None))


class Worker:
    """Resolves images named by requests, for one process."""

    def __init__(self, gateway: gateway_mod.Gateway, timeout: float,
                 strip_s3_credentials: bool = False):
        self.gateway = gateway
        self.timeout = timeout
        self.decider = lambda: gateway.get_decider(
            glance_rules=True, strip_s3_credentials=strip_s3_credentials)
        self._slots = threading.BoundedSemaphore(MAX_RUNNING)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=MAX_RUNNING, thread_name_prefix='multistore-prefix')
        self._logged: set[tuple] = set()

    @classmethod
    def from_config(cls, conf: cfg.ConfigOpts) -> 'Worker | None':
        """The worker, or ``None``; never raises.

        ``None``: a single store, or a configuration it cannot work with;
        one log line says which.
        """
        try:
            return cls._build(conf)
        except Exception as exc:
            if isinstance(exc, exceptions.CONFIG_ERRORS):
                reason = exceptions.describe(exc, conf)
            else:
                reason = f'{type(exc).__name__}: {masking.mask_error(exc)}'
            LOG.error('multistore_prefix filter: off, every request passes '
                      'through: %s', masking.mask_text(reason))
            LOG.debug('multistore_prefix filter: set-up failed',
                      exc_info=True)
            return None

    @classmethod
    def _build(cls, conf):
        lmap.register_opts(conf)
        if not conf.enabled_backends:
            LOG.info('multistore_prefix filter: [DEFAULT]/enabled_backends '
                     'is not set (a single store); every request passes '
                     'through')
            return None
        register_database_opts(conf)
        if not conf.database.connection:
            LOG.error('multistore_prefix filter: off, every request passes '
                      'through: [database]/connection is not set; it must '
                      'be Glance\'s database')
            return None
        own = conf[GROUP]
        gateway = gateway_mod.Gateway(
            conf, one_connection=True, backend_lookups=own.backend_lookups,
            lookup_timeout=own.backend_lookup_timeout,
            fix_wrong_stores=own.fix_wrong_stores)
        strip = glance_strips_s3_credentials()
        LOG.info('multistore_prefix filter: on in process %d, stores %s%s',
                 os.getpid(), ', '.join(sorted(gateway.location_map.stores)),
                 '; S3 URLs lose their credentials first, as Glance\'s own '
                 'rule would' if strip else '')
        return cls(gateway, own.request_timeout, strip_s3_credentials=strip)

    def resolve(self, image_id: str, context=None) -> None:
        """Give ``image_id``'s legacy locations their store; never raises.

        Waits at most ``timeout``; whatever goes wrong is one log line (the
        traceback at debug level) and the request goes on.
        """
        started = time.monotonic()
        eventlet = sys.modules.get('eventlet')
        if (eventlet is not None
                and eventlet.patcher.is_monkey_patched('thread')
                and not self._may_write(image_id, context)):
            return
        if time.monotonic() - started > self.timeout:
            # The read in the request's green thread outlived the bound
            # (a driver that blocks the whole process): as late as the
            # pool's answer would have been, and written as little.
            self._gave_up(image_id)
            return
        if not self._slots.acquire(blocking=False):
            LOG.warning('multistore_prefix filter: image %s passed through '
                        'unresolved: %d resolutions still running (is the '
                        'database answering?)', image_id, MAX_RUNNING)
            return
        # Set when the request stops waiting: the work then writes nothing
        # (unless already writing), not to compete with Glance's own rule.
        given_up = threading.Event()
        try:
            future = self._pool.submit(self._resolve, image_id, context,
                                       given_up)
        except RuntimeError:  # the pool is shut down (process exiting)
            self._slots.release()
            return
        try:
            future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            given_up.set()
            self._gave_up(image_id)
        except Exception as exc:
            LOG.warning('multistore_prefix filter: image %s passed through '
                        'unresolved: %s: %s', image_id, type(exc).__name__,
                        masking.mask_error(exc))
            LOG.debug('multistore_prefix filter: image %s', image_id,
                      exc_info=True)
        else:
            LOG.debug('multistore_prefix filter: image %s checked in %.1f ms',
                      image_id, (time.monotonic() - started) * 1000)

    def _gave_up(self, image_id) -> None:
        LOG.warning('multistore_prefix filter: image %s passed through '
                    'unresolved: no answer within request_timeout (%.1f s)',
                    image_id, self.timeout)

    def _may_write(self, image_id, context) -> bool:
        """Whether the image's locations may need a write (read here).

        Under eventlet, a wait on the pool yields to the process's other
        green threads even when there is nothing to write, and what runs
        meanwhile (Glance's cache prefetcher) changes what the request
        finds: the read is done in the request's own green thread, and the
        pool is used only for an image that may need a write.  A failure
        says yes, and the pool's path reports it.
        """
        wanted = []
        try:
            batch = self._resolve_stores(
                image_id, context, lambda: wanted.append(True) and False)
        except db_exc.NotFound:
            return False
        except Exception:
            return True
        if batch is not None and not wanted:
            self._log_left(batch)
        return bool(wanted)

    def _resolve(self, image_id, context, given_up):
        try:
            batch = self._resolve_stores(image_id, context,
                                         lambda: not given_up.is_set())
            if batch is not None:
                self._log_left(batch)
        except db_exc.NotFound as exc:
            # Glance answers 404 itself.
            LOG.debug('multistore_prefix filter: image %s: %s', image_id,
                      exc)
        except db_exc.Busy:
            # A backfill batch (or Glance's own save) is writing these
            # rows: the request does not wait for it.
            LOG.info('multistore_prefix filter: image %s passed through: '
                     'its locations are locked by another writer (a '
                     'backfill?); the next request checks it again',
                     image_id)
        finally:
            self._slots.release()

    def _resolve_stores(self, image_id, context, proceed):
        return self.gateway.get_repo(context).resolve_stores(
            image_id, self.decider(), proceed=proceed)

    def _log_left(self, batch) -> None:
        """One line for each row left alone, once per process."""
        left = list(batch.unresolved)
        if not self.gateway.fix_wrong_stores:
            left += [deciding.Unresolved(
                row.location_id, row.image_id, row.url, 'wrong-store',
                f'names store {row.named!r}, which {row.owner!r} owns; '
                f'fix_wrong_stores is off') for row in batch.wrong]
        for location_id, image_id, url, reason, detail, _ in left:
            key = (location_id, reason)
            if key in self._logged:
                continue
            if len(self._logged) >= LOGGED_ROWS:
                self._logged.clear()
            self._logged.add(key)
            LOG.warning('multistore_prefix filter: image %s location %s (%s) '
                        'left as it is (%s): %s', image_id, location_id,
                        masking.mask_url(url), reason,
                        masking.mask_text(detail))

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self.gateway.close()


class ResolveFilter:
    """The WSGI middleware over ``app``, on glance-api's ``conf``."""

    def __init__(self, app, conf: cfg.ConfigOpts | None = None):
        self.app = app
        self.conf = cfg.CONF if conf is None else conf
        register_opts(self.conf)
        self._worker: Worker | None = None
        self._worker_pid: int | None = None
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        named = _IMAGE_PATH.match(environ.get('PATH_INFO') or '')
        worker = None
        if named and environ.get('REQUEST_METHOD') not in _SKIPPED_METHODS:
            worker = self.worker()
        if worker is None:
            return self.app(environ, start_response)
        image_id = named.group(1)
        context = environ.get('glance.context')
        worker.resolve(image_id, context)
        response = self.app(environ, start_response)
        if environ.get('REQUEST_METHOD') in _WRITING_METHODS:
            # Glance has answered (a WSGI app writes before it returns);
            # the body is not sent yet.
            worker.resolve(image_id, context)
        return response

    def worker(self) -> Worker | None:
        """This process's worker, built on its first request."""
        pid = os.getpid()
        if self._worker_pid != pid:
            with self._lock:
                if self._worker_pid != pid:
                    # A forked child never uses its parent's connections
                    # or threads: it builds its own.
                    self._worker = Worker.from_config(self.conf)
                    self._worker_pid = pid
        return self._worker


def filter_factory(global_conf: dict, **local_conf):
    """Paste Deploy's filter factory.

    Options come from glance-api.conf, never from the paste file: keys
    given there are reported and ignored.
    """
    if local_conf:
        LOG.warning('multistore_prefix filter: paste options %s ignored; '
                    'set them in [%s] of glance-api.conf',
                    ', '.join(sorted(local_conf)), GROUP)

    def make(app):
        return ResolveFilter(app)
    return make
