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


"""Live locations in bulk: compare-and-swap batch writes.

The writes of the backfill, beside the single-location ones of
:mod:`multistore_prefix.db.api`.  They are written per engine and run
through the SQLAlchemy connection (``exec_driver_sql``), so oslo.db still
translates every error (a deadlock, a lost connection), while rows and
parameters skip SQLAlchemy's per-row work, which would otherwise be most
of the cost.

On PostgreSQL, a batch write is one ``UPDATE`` per chunk of rows, joined
to the chunk's arrays in id order::

    UPDATE image_locations AS l SET meta_data = v.new, updated_at = :now
      FROM unnest(:ids, :olds, :news) AS v(id, old, new)
     WHERE l.id = v.id AND l.meta_data = v.old
       AND l.deleted = false AND l.status = 'active'

(a nested loop over the arrays, each row found by the primary key: the
planner is kept off hash and merge joins and off bitmap and sequential
scans for that transaction).  Each array goes as one string, in
PostgreSQL's array syntax.  On MySQL, it is one ``UPDATE`` per chunk of
rows in id order::

    UPDATE image_locations
       SET meta_data = CASE WHEN id IN (<group 1>) THEN :new1 ... END,
           updated_at = :now
     WHERE id IN (<the chunk>) AND deleted = false AND status = 'active'
       AND ((id IN (<group 1>) AND meta_data = :old1) OR ...)

(a group: the rows that go from one text to another).  Each row changes
only if it still holds exactly the text that was read and is still live,
and the rows of one image are locked in id order, the order in which
Glance's own image save updates an image's locations, so the two never
deadlock.  On MySQL that is an index range scan of the primary key; the
PostgreSQL planner may still lock rows in heap order (a table without
statistics, read whole), so there the rows of images with more than one
row in the batch are locked first, in the same round trip, by a ``SELECT
... ORDER BY id FOR UPDATE`` (the lock comes after the sort).  Only rows
of one image can meet in such a cycle (a Glance save locks one image's
rows), so the rows of images with a single row in the batch are locked
in whatever order is cheapest (on MySQL, one ``UPDATE`` per pair of
texts); SQLite locks the whole database, and there every row does.
"""

import collections
import itertools
from typing import Iterable, NamedTuple, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from multistore_prefix.db import exceptions
from multistore_prefix.db import models
from multistore_prefix.db import sql

_L = models.image_locations

#: Rows per UPDATE on SQLite, whose statements take at most 32766
#: parameters; a server takes a whole batch in one.
SQLITE_CHUNK = 2000
SERVER_CHUNK = 5000


#: A batch is written on PostgreSQL in this many transactions
#: (:func:`transactions`) once it has PASS_ROWS rows per pass.
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


def transactions(dialect_name: str, writes: Sequence) -> list[Sequence]:
    """The batch's writes in the transactions to write them in.

    Other engines update rows in place: one.  On PostgreSQL, an
    ``UPDATE`` writes a new version of the row, on the same page when
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
    if dialect_name != 'postgresql' or len(writes) < PASSES * PASS_ROWS:
        return [writes] if writes else []
    return [writes[start::PASSES] for start in range(PASSES)]


class MetadataWrite(NamedTuple):
    """``meta_data`` from ``text`` (read) to ``new_text``, compare-and-swap.

    Any record with these four attributes will do (the backfill's
    :class:`~multistore_prefix.deciding.Write` is one).
    """

    location_id: int
    image_id: str
    text: str
    new_text: str


class Current(NamedTuple):
    """A location row as it is now, locked until the transaction ends.

    ``url`` and ``text`` (``meta_data``) are ``bytes`` on SQLite when not
    UTF-8.
    """

    url: str | bytes
    text: str | bytes | None
    status: str
    deleted: bool

    @property
    def live(self) -> bool:
        """:func:`multistore_prefix.db.sql.live_location` of this row."""
        return not self.deleted and self.status == sql.LIVE_STATUS


def set_metadata(conn, writes: Sequence[tuple], now,
                 locked: bool = False) -> int:
    """Compare-and-swap ``meta_data`` of many rows; returns rows changed.

    :param writes: :class:`MetadataWrite` records, any order; a location
        at most once.
    :param now: the ``updated_at`` to write (a naive UTC datetime).
    :param locked: this transaction holds the rows' locks already (any
        order of writing them is then safe).
    :raises Conflict: with ``locked``, a row did not change: only a bug
        gets there, and the caller's transaction must roll back.
    """
    if not writes:
        return 0
    dialect = conn.dialect
    # As the DBAPI wants it for the column (SQLite: text).
    process = _L.c.updated_at.type.dialect_impl(dialect).bind_processor(
        dialect)
    stamp = process(now) if process else now
    name = dialect.name
    if name == 'sqlite' or locked:
        # SQLite: the writer holds the whole database's lock.
        statements = _group_updates(dialect, writes, stamp, SQLITE_CHUNK)
    elif name == 'postgresql':
        statements = joined_updates(writes, stamp, SERVER_CHUNK)
    else:
        # MySQL: a row of an image with no other row here can be locked in
        # any order (Glance's save of an image locks only that image's
        # rows); the others in id order.  The statements by text are a
        # third cheaper than one with a CASE per row there.
        count = collections.Counter(w.image_id for w in writes)
        alone = [w for w in writes if count[w.image_id] == 1]
        others = [w for w in writes if count[w.image_id] > 1]
        statements = itertools.chain(
            _case_updates(dialect, others, stamp),
            _group_updates(dialect, alone, stamp, SERVER_CHUNK))
    changed = 0
    for statement, params in statements:
        changed += _execute(conn, statement, params)
    if locked and changed != len(writes):
        raise exceptions.Conflict(None, 'locations', reason=(
            f'{len(writes) - changed} of {len(writes)} locked rows did not '
            f'change'))
    return changed


def _execute(conn, statement: str, params: tuple) -> int:
    """Run ``statement``; the rows its last command changed.

    psycopg 3 binds parameters on the server, which takes one command per
    statement: there, the commands of a batch statement (``SET LOCAL ...;
    UPDATE ...``) go one at a time, each with its own parameters.
    psycopg2 binds them itself and sends all at once.
    """
    if conn.dialect.driver != 'psycopg' or '; ' not in statement:
        return conn.exec_driver_sql(statement, params).rowcount
    rowcount = 0
    for command in filter(None, statement.split('; ')):
        taken = command.count('%s')
        rowcount = conn.exec_driver_sql(command, tuple(params[:taken])
                                        ).rowcount
        params = params[taken:]
    return rowcount


def _group_updates(dialect, writes, stamp, chunk_size):
    """One UPDATE per (text read, new text), a chunk of rows at a time."""
    for (old, new), ids in _groups(writes).items():
        for start in range(0, len(ids), chunk_size):
            parts = _Sql(dialect)
            setting = parts.value(new)
            when = parts.value(stamp)
            yield (f'UPDATE image_locations SET meta_data = {setting}, '
                   f'updated_at = {when} '
                   f'WHERE {parts.among(ids[start:start + chunk_size])} '
                   f'AND {parts.holds(old)} AND '
                   f'{sql.live_location_text(dialect)}', parts.params)


def lock_current(conn, ids: Iterable[int], lock: bool = True,
                 nowait: bool = False) -> dict[int, Current]:
    """The rows of ``ids`` as they are now, locked in id order.

    The one statement that locks location rows, for every writer of one.
    On SQLite the writer holds the database lock already.

    :param lock: ``False``: only read them (a dry run).
    :param nowait: fail at once when another transaction holds one.
    :raises Busy: with ``nowait``, one is locked (the transaction must
        end: on MySQL it was rolled back).
    """
    ids = sorted(ids)
    sqlite = conn.dialect.name == 'sqlite'
    found = {}
    for start in range(0, len(ids), SQLITE_CHUNK):
        query = (sa.select(_L.c.id, sql.text_as_stored(_L.c.value, sqlite),
                           sql.text_as_stored(_L.c.meta_data, sqlite),
                           _L.c.deleted, _L.c.status)
                 .where(_L.c.id.in_(ids[start:start + SQLITE_CHUNK]))
                 .order_by(_L.c.id))
        if lock:
            query = query.with_for_update(nowait=nowait)
        with sql.busy_as(f'locations {ids[start]}..', nowait):
            found_rows = conn.execute(query).all()
        for location_id, url, text, deleted, status in found_rows:
            found[location_id] = Current(
                sql.utf8_or_bytes(url), sql.utf8_or_bytes(text), status,
                deleted)
    return found


def _case_updates(dialect, writes, stamp):
    """MySQL: the id-ordered UPDATEs, a chunk at a time (see above)."""
    ordered = sorted(writes, key=lambda w: w.location_id)
    for start in range(0, len(ordered), SERVER_CHUNK):
        chunk = ordered[start:start + SERVER_CHUNK]
        groups = _groups(chunk)
        parts = _Sql(dialect)
        setting = [f'WHEN {parts.among(ids)} THEN {parts.value(new)}'
                   for (_old, new), ids in groups.items()]
        when = parts.value(stamp)
        among = parts.among([w.location_id for w in chunk])
        swaps = [f'({parts.among(ids)} AND {parts.holds(old)})'
                 for (old, _new), ids in groups.items()]
        yield (f'UPDATE image_locations SET meta_data = CASE '
               f'{" ".join(setting)} ELSE meta_data END, '
               f'updated_at = {when} WHERE {among} AND '
               f'{sql.live_location_text(dialect)} '
               f"AND ({' OR '.join(swaps)})", parts.params)


class _Sql:
    """Pieces of one statement, with their parameters in order."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.name = dialect.name
        self.mark = '?' if self.name == 'sqlite' else '%s'
        self._params: list = []

    @property
    def params(self) -> tuple:
        return tuple(self._params)

    def value(self, value) -> str:
        self._params.append(value)
        return self.mark

    def among(self, ids) -> str:
        """``id`` is one of ``ids``.

        On PostgreSQL the ids are one array parameter, in its text form,
        as the joined writes send theirs.  On MySQL they are written into
        the statement as numbers: the driver would otherwise escape each
        one in Python, a fifth of the cost of a batch write there.
        """
        if self.name == 'postgresql':
            self._params.append(integer_array(ids))
            return 'id = ANY(%s::integer[])'
        if self.name == 'mysql':
            return f'id IN ({",".join(map(str, map(int, ids)))})'
        self._params.extend(ids)
        return f'id IN ({", ".join([self.mark] * len(ids))})'

    def holds(self, text) -> str:
        """``meta_data`` holds exactly ``text`` (:func:`sql.holds`)."""
        mark = None if text is None else self.value(text)
        return sql.holds_text(self.dialect, _L.c.meta_data, mark)


def _groups(writes) -> dict[tuple[str, str], list[int]]:
    """The rows' ids by (text read, new text)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for write in writes:
        groups.setdefault((write.text, write.new_text), []).append(
            write.location_id)
    return groups


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
