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
``update_store_in_locations``, done right: each live location row is
decided on its metadata text by the one rule engine (:class:`~
multistore_prefix.deciding.Decider`, the backfill's and the filter's) and
written compare-and-swap, ``meta_data`` alone, before the image is read.
A caller who may not write (or whose rows another writer holds) still
gets the resolved image, in memory, and a save by one who may writes it.
"""

import logging

from multistore_prefix.db import exceptions
from multistore_prefix import deciding
from multistore_prefix import domain
from multistore_prefix import resolver

LOG = logging.getLogger(__name__)

#: Reasons that say a row holds something unreadable or too big
#: (someone's to fix); a URL no store owns is an answer, not a fault.
_FAULTS = (resolver.BAD_METADATA, resolver.BAD_LOCATION,
           resolver.INVALID_STORE, deciding.TOO_LONG)


class ImageRepoProxy(domain.Proxy):
    """Gives legacy locations their store on ``get``; writes only that."""

    def __init__(self, base, decider: deciding.Decider):
        super().__init__(base)
        self.decider = decider

    def get(self, image_id: str):
        """The image, its live locations given their store."""
        decided = []
        try:
            batch = self.resolve_stores(image_id, self.decider,
                                        decided=decided)
            image = self.base.get(image_id)
        except (exceptions.Forbidden, exceptions.Busy) as exc:
            LOG.debug('Image %s: stores resolved, not saved: %s', image_id,
                      exc)
            image = self.base.get(image_id)
            batch = decided[0]
            _in_memory(image, [*batch.writes, *batch.rewrites])
        # A store the column cannot take: the caller gets it all the same.
        _in_memory(image, [row for row in batch.unresolved if row.store])
        for row in batch.unresolved:
            log = LOG.warning if row.reason in _FAULTS else LOG.debug
            log('Image %s location %s: no store (%s): %s', image_id,
                row.location_id, row.reason, row.detail)
        return image

    def resolve_stores(self, image_id: str, decider: deciding.Decider,
                       proceed=None, decided: list | None = None
                       ) -> deciding.Batch | None:
        """Give ``image_id``'s live locations their store, by their rows.

        The URLs no prefix owns go to the stores' backends.  An image whose
        locations need nothing costs one read of its location rows.

        :param proceed: asked before anything is written; when it says no
            (its caller stopped waiting), nothing is.
        :param decided: a list that gets each batch as it is decided
            (the first one: on the rows as read, before any lock).
        :returns: the batch decided (its ``writes`` written; ``None`` when
            ``proceed`` said no).
        """
        def decide(rows):
            batch = decider.classify(rows, rows[-1][0] if rows else 0)
            if decided is not None:
                decided.append(batch)
            return batch

        batch = self.base.correct_locations(image_id, decide, proceed)
        if batch is None:
            return None
        if batch.asked and (proceed is None or proceed()):
            decider.ask_backends(batch)
        if batch.rewrites and (proceed is None or proceed()):
            for lost in self.base.rewrite_locations(image_id, batch.rewrites):
                LOG.info('Image %s location %s: rewritten meanwhile by '
                         'another writer; left as it is', image_id,
                         lost.location_id)
        return batch


def _in_memory(image, changes: list) -> None:
    locations = {location.get('id'): location
                 for location in image.locations}
    for change in changes:
        location = locations.get(change.location_id)
        if location is None or not isinstance(location['metadata'], dict):
            continue
        location['metadata'] = {**location['metadata'], 'store': change.store}
        if isinstance(change, deciding.Rewrite):
            location['url'] = change.new_url
