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

Live locations are read in primary-key order (:mod:`.reading`), decided
by :mod:`multistore_prefix.deciding` as in the glance-api filter, and a
batch is written in one transaction of compare-and-swap updates
(:mod:`.writing`); a row that cannot be read, parsed, resolved or written
is reported (:mod:`.report`) and left as it is, and the run goes on.  An
interruption loses at most the batch in flight, whole: nothing is ever
half-written.  :mod:`.job` runs the stages; :mod:`.revert` undoes a run.
"""

from multistore_prefix.backfill.job import Backfill  # noqa: F401
from multistore_prefix.backfill.job import BackfillError  # noqa: F401
from multistore_prefix.backfill.job import BATCH_SIZE  # noqa: F401
from multistore_prefix.backfill.reading import Shard  # noqa: F401
from multistore_prefix.backfill.report import Report  # noqa: F401
