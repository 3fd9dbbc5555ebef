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


"""PostgreSQL's batch writes: joined to arrays, in passes.

The statements behind :func:`multistore_prefix.db.batches.
set_metadata` on PostgreSQL.  A batch write is one ``UPDATE`` per chunk
of rows, joined to the chunk's arrays in id order::

    UPDATE image_locations AS l SET meta_data = v.new, updated_at = :now
      FROM unnest(:ids, :olds, :news) AS v(id, old, new)
     WHERE l.id = v.id AND l.meta_data = v.old
       AND l.deleted = false AND l.status = 'active'

(a nested loop over the arrays, each row found by the primary key: the
planner is kept off hash and merge joins and off bitmap and sequential
scans for that transaction).  The planner may still lock the rows in heap
order (a table without statistics, read whole), so the rows of images
with more than one row in the batch are locked first, in the same round
trip, by a ``SELECT ... ORDER BY id FOR UPDATE`` (the lock comes after
the sort).  Each array goes as one string, in PostgreSQL's array syntax.

A batch is written in several transactions (:func:`passes`), so that most
rows stay on their page.
"""

import collections

from sqlalchemy.dialects import postgresql

from multistore_prefix.db import sql

#: A batch is written in this many transactions (:func:`passes`) once it
#: has PASS_ROWS rows per pass.
PASSES = 4
PASS_ROWS = 100

#: A bitmap or sequential scan, a hash or a merge join would read the
#: table from its start for every chunk.
JOINED_SETTINGS = (
    'SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; '
    'SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off; ')
_JOINED_UPDATE = (
    'UPDATE image_locations AS l SET meta_data = v.new, updated_at = %s '
    'FROM unnest(%s::integer[], %s::text[], %s::text[]) AS v(id, old, new) '
    'WHERE l.id = v.id AND l.meta_data = v.old AND '
    + sql.live_location_text(postgresql.dialect(), 'l'))
_ORDERED_LOCK = (
    'SELECT count(*) FROM (SELECT l.id FROM unnest(%s::integer[]) AS v(id) '
    'JOIN image_locations AS l ON l.id = v.id ORDER BY l.id '
    'FOR UPDATE OF l) AS locked; ')


def passes(writes):
    """A batch's writes in the transactions to write them in.

    An ``UPDATE`` writes a new version of the row, on the same page when
    the page has room and no indexed column changes (a heap-only tuple:
    no index entry to add, several times cheaper).  A table Glance filled
    has no room, so every row of a batch written in one transaction moves
    to a new page and gets a new entry in every index.  Written in
    :data:`PASSES` transactions, each taking every n-th row, the first
    pass frees room on every page of the batch once it commits (its old
    versions are dead), and the later ones fit there: on the benchmark's
    200,000 rows, the writes take half the time.  Each transaction is a
    compare-and-swap of its own rows, locked in id order, as one would
    be.  A batch of fewer than ``PASSES * PASS_ROWS`` rows is one.
    """
    if len(writes) < PASSES * PASS_ROWS:
        return [writes] if writes else []
    return [writes[start::PASSES] for start in range(PASSES)]


def joined_updates(writes, stamp, chunk_size: int):
    """The UPDATEs of rows in id order, a chunk at a time.

    One round trip each; its count is the UPDATE's (the last statement).
    """
    per_image = collections.Counter(w.image_id for w in writes)
    ordered = sorted(writes, key=lambda w: w.location_id)
    for start in range(0, len(ordered), chunk_size):
        chunk = ordered[start:start + chunk_size]
        escaped = {}
        update = (stamp, integer_array([w.location_id for w in chunk]),
                  text_array([w.text for w in chunk], escaped),
                  text_array([w.new_text for w in chunk], escaped))
        shared = [w.location_id for w in chunk if per_image[w.image_id] > 1]
        if shared:
            yield (JOINED_SETTINGS + _ORDERED_LOCK + _JOINED_UPDATE,
                   (integer_array(shared), *update))
        else:
            yield JOINED_SETTINGS + _JOINED_UPDATE, update


def integer_array(ids) -> str:
    """The text form of an ``integer[]``.

    One string parameter: the driver would otherwise adapt each element
    in Python, and the server parse an ``ARRAY[...]`` of as many
    constants (together a fifth of the write's time).
    """
    return '{' + ','.join(map(str, map(int, ids))) + '}'


def text_array(texts, escaped: dict) -> str:
    """The text form of a ``text[]`` (see :func:`integer_array`).

    :param escaped: the quoted elements so far, by text (a batch holds few
        distinct texts).
    """
    quoted = []
    for text in texts:
        element = escaped.get(text)
        if element is None:
            element = escaped[text] = 'NULL' if text is None else (
                '"' + text.replace('\\', '\\\\').replace('"', '\\"')
                + '"')
        quoted.append(element)
    return '{' + ','.join(quoted) + '}'
