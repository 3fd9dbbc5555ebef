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
"""

import logging
import os
import re
import threading

from oslo_config import cfg

from multistore_prefix.middleware import options
from multistore_prefix.middleware import resolving

LOG = logging.getLogger('multistore_prefix.middleware')

_UUID = ('[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
         '[0-9a-fA-F]{12}')
# Before version negotiation the path may carry a minor version (v2.15).
_IMAGE_PATH = re.compile(
    rf'/v2(?:\.[0-9]+)?/(?:images|cache)/({_UUID})(?:/|$)')
# CORS preflights never load the image.
_SKIPPED_METHODS = frozenset(('OPTIONS',))
# Requests that may add or replace an image's locations (PATCH of the
# image, the Location API, upload, import): Glance's own rule labels what
# they add, so the image is checked again once Glance has answered.
_WRITING_METHODS = frozenset(('PATCH', 'POST', 'PUT'))


def image_id_of(environ: dict) -> str | None:
    """The image id a request's path names, or ``None``."""
    if environ.get('REQUEST_METHOD') in _SKIPPED_METHODS:
        return None
    match = _IMAGE_PATH.match(environ.get('PATH_INFO') or '')
    return match.group(1) if match else None


class ResolveFilter:
    """The WSGI middleware over ``app``, on glance-api's ``conf``."""

    def __init__(self, app, conf: cfg.ConfigOpts | None = None):
        self.app = app
        self.conf = cfg.CONF if conf is None else conf
        options.register_opts(self.conf)
        self._worker: resolving.Worker | None = None
        self._worker_pid: int | None = None
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        image_id = image_id_of(environ)
        worker = None if image_id is None else self.worker()
        if worker is None:
            return self.app(environ, start_response)
        context = environ.get('glance.context')
        worker.resolve(image_id, context)
        response = self.app(environ, start_response)
        if environ.get('REQUEST_METHOD') in _WRITING_METHODS:
            # Glance has answered (a WSGI app writes before it returns);
            # the body is not sent yet.
            worker.resolve(image_id, context)
        return response

    def worker(self) -> resolving.Worker | None:
        """This process's worker, built on its first request."""
        pid = os.getpid()
        if self._worker_pid != pid:
            with self._lock:
                if self._worker_pid != pid:
                    # A forked child never uses its parent's connections
                    # or threads: it builds its own.
                    self._worker = resolving.Worker.from_config(self.conf)
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
                    ', '.join(sorted(local_conf)), options.GROUP)

    def make(app):
        return ResolveFilter(app)
    return make
