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

"""Where the migration to several stores stands, counted in one read.

Every live location is read as the backfill reads it (keyset batches,
the next one read beside the current) and decided by the backfill's own
:class:`~multistore_prefix.deciding.Decider`, with the same
rules (the wrong-store rule included) and no backend lookups; nothing is
written.  Only the counts are kept.
"""

import collections
import dataclasses

from multistore_prefix.backfill import reading
from multistore_prefix import deciding
from multistore_prefix import location_map as lmap
from multistore_prefix import resolver as resolver_mod

#: Locations read per statement: the check writes nothing, so a batch is
#: only as big as memory allows (a few megabytes of short rows).
BATCH_SIZE = 20_000


@dataclasses.dataclass
class Standing:
    """The counts of live locations, by what the backfill would do.

    :ivar scanned: live locations read.
    :ivar already_set: locations naming the enabled store that owns them.
    :ivar without_store: (store type, store) -> locations with no
        ``store`` that the backfill gives that store.
    :ivar retired: retired store name -> locations naming it, that the
        backfill gives a store.
    :ivar wrong: (store named, owning store) -> locations naming the
        wrong enabled store (the ``--fix-wrong-stores`` rule).
    :ivar unresolved: reason -> locations left without a store.
    """

    scanned: int = 0
    already_set: int = 0
    without_store: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)
    retired: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)
    wrong: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)
    unresolved: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)

    def add(self, batch: deciding.Batch, types: dict) -> None:
        """Count a decided batch.

        :param types: store -> its type (``store_entry``).
        """
        self.scanned += batch.scanned
        self.already_set += batch.already_set
        for write in batch.writes:
            if write.previous is None:
                self.without_store[types[write.store], write.store] += 1
            else:
                self.retired[write.previous] += 1
        for row in batch.wrong:
            self.wrong[row.named, row.owner] += 1
        for row in batch.unresolved:
            self.unresolved[row.reason] += 1


def scan(database, location_map: lmap.LocationMap,
         batch_size: int = BATCH_SIZE, cipher=None) -> Standing:
    """Read and decide every live location; nothing is written.

    :param cipher: for the URLs Glance stored encrypted (see
        :mod:`multistore_prefix.crypt`), or ``None``.
    """
    decider = deciding.Decider(resolver_mod.Resolver(location_map),
                               cipher=cipher)
    reader = reading.Reader(database, batch_size, reading.Shard().bounds(),
                            lambda: False)
    types = {store: entry.store_entry
             for store, entry in location_map.stores.items()}
    standing = Standing()

    def next_batch(after):
        rows, last_id = reader.read(after)
        if last_id is None:
            return None
        return decider.classify(rows, last_id)

    batches = reading.batches(next_batch, True, lambda: False,
                              lambda: False)
    try:
        for batch in batches:
            standing.add(batch, types)
            # Rows too long for a batch read are read one by one.
            for location_id in batch.large:
                row = reader.read_one(location_id)
                if row is not None:
                    single = deciding.Batch(scanned=0, last_id=location_id)
                    decider.one(single, *row)
                    standing.add(single, types)
    finally:
        batches.close()
    return standing
