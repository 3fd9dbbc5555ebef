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


"""Backfill: give every legacy location its store, in bulk, on a live DB.

The job streams live locations in primary-key order (keyset pagination, so
memory stays flat and a rerun simply starts over), decides each one with
the location map, and writes a batch in one transaction of compare-and-
swap updates: ``meta_data`` and ``updated_at`` of that row change, and only
if the row still holds the exact text that was read and is still live.  A
row someone changed meanwhile is decided again on its fresh text, never
overwritten; a row that cannot be read, parsed, resolved or written is
reported and left as it is, and the run goes on.  Interrupting it at any
moment loses at most the batch in flight, whole: nothing is ever
half-written.

The stages, one module each: :mod:`.reading`, :mod:`.writing`,
:mod:`.report`; :mod:`.job` runs them, deciding each row with
:mod:`multistore_prefix.deciding`, as the glance-api filter does.
"""

from multistore_prefix.backfill.job import Backfill  # noqa: F401
from multistore_prefix.backfill.job import BackfillError  # noqa: F401
from multistore_prefix.backfill.job import BATCH_SIZE  # noqa: F401
from multistore_prefix.backfill.reading import Shard  # noqa: F401
from multistore_prefix.backfill.report import Report  # noqa: F401
