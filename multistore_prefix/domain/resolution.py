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


"""Resolve on GET: reading an image gives its legacy locations their store.

The job Glance's ``ImageRepoProxy.get`` does with
``update_store_in_locations``, done right: the resolver picks each legacy
location's store (longest prefix on a component boundary), the image gets
the ``store`` key in memory, and the layer below (the distinction layer)
persists exactly that key of those location rows, nothing else of the
image.  A caller who may not write still gets the resolved image.
"""

import logging

from multistore_prefix import deciding
from multistore_prefix.domain import exceptions
from multistore_prefix import resolver as resolver_mod

LOG = logging.getLogger(__name__)

_FAULTS = (resolver_mod.BAD_METADATA, resolver_mod.BAD_LOCATION,
           resolver_mod.INVALID_STORE)


class ImageRepoProxy:
    """Attaches stores to legacy locations on ``get`` and saves only that.

    :ivar base: the repository below (the distinction layer).
    :ivar resolver: the :class:`~multistore_prefix.resolver.Resolver`.
    :ivar attempts: how many times ``get`` re-reads an image whose locations
        another writer changed while it was resolving.
    """

    def __init__(self, base, resolver: resolver_mod.Resolver,
                 attempts: int = 3):
        self.base = base
        self.resolver = resolver
        self.attempts = attempts

    def get(self, image_id: str):
        """The image, its legacy locations given their store.

        Persisting the stores is best effort: when the caller may not write
        (:class:`~multistore_prefix.db.exceptions.Forbidden`) or other
        writers keep changing the same locations, the image is returned
        resolved in memory all the same.
        """
        return self._save_resolved(self.base.get(image_id))

    def _save_resolved(self, image):
        image_id = image.image_id
        for attempt in range(1, self.attempts + 1):
            if not self.resolve(image):
                return image
            try:
                self.base.save(image)
                return image
            except exceptions.Forbidden as exc:
                LOG.debug('Image %s: stores resolved, not saved: %s',
                          image_id, exc)
                return image
            except exceptions.Rejected as exc:
                # One row the database will not take (metadata too long
                # for MySQL's column): left as it is, said once.
                LOG.warning('Image %s: stores resolved, not saved: %s',
                            image_id, exc)
                return image
            except exceptions.Conflict as exc:
                if attempt == self.attempts:
                    LOG.warning('Image %s: stores resolved, not saved: %s',
                                image_id, exc)
                    return image
                image = self.base.get(image_id)
        return image

    def resolve_stores(self, image_id: str, decider: deciding.Decider,
                       proceed=None) -> deciding.Batch | None:
        """Give ``image_id``'s live locations their store, by their rows.

        The glance-api filter's entrance: each row is decided on its
        metadata text with the backfill's rules (``decider``), and written
        compare-and-swap by the repository; the URLs no prefix owns go to
        the stores' backends, as on get.  An image whose locations need
        nothing costs one read of its location rows.

        :param proceed: asked before anything is written; when it says no
            (its caller stopped waiting), nothing is.
        :returns: the batch decided (its ``writes`` written; ``None`` when
            ``proceed`` said no).
        """
        batch = self.base.correct_locations(
            image_id, lambda rows: decider.classify(
                rows, rows[-1][0] if rows else 0), proceed)
        if batch is None:
            return None
        if batch.rewrites and (proceed is None or proceed()):
            for lost in self.base.rewrite_locations(image_id, batch.rewrites):
                LOG.info('Image %s location %s: rewritten meanwhile by '
                         'another writer; left as it is', image_id,
                         lost.location_id)
        if batch.asked:
            self._ask_backends(image_id, batch, proceed)
        return batch

    def _ask_backends(self, image_id, batch, proceed):
        """The legacy rows only a backend can place (cinder), on get."""
        asked = {row[0] for row in batch.asked}
        image = self.base.get(image_id)
        if any(location.get('id') in asked for location in image.locations):
            if proceed is None or proceed():
                self._save_resolved(image)

    def resolve(self, image) -> int:
        """Give ``image``'s legacy locations their store, in memory.

        :returns: how many locations changed.
        """
        plan = self.resolver.plan(image.locations)
        for change in plan.changes:
            location = image.locations[change.index]
            location['metadata'] = {**location['metadata'],
                                    **change.metadata_update}
            if change.new_url:
                location['url'] = change.new_url
        for unresolved in plan.unresolved:
            location = image.locations[unresolved.index]
            location_id = (location.get('id') if isinstance(location, dict)
                           else None)
            # Rows that hold something unreadable are someone's to fix;
            # a URL no store owns is an answer, not a fault.
            log = (LOG.warning if unresolved.reason in _FAULTS
                   else LOG.debug)
            log('Image %s location %s (%s): no store (%s): %s',
                image.image_id, location_id, unresolved.url,
                unresolved.reason, unresolved.detail)
        return len(plan.changes)

    def list(self, *args, **kwargs):
        return self.base.list(*args, **kwargs)

    def add(self, image):
        return self.base.add(image)

    def save(self, image, from_state=None):
        return self.base.save(image, from_state=from_state)

    def remove(self, image):
        return self.base.remove(image)
