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
:mod:`multistore_prefix.db.location_rows`.  They are written per engine and run
through the SQLAlchemy connection (``exec_driver_sql``), so oslo.db still
translates every error (a deadlock, a lost connection), while rows and
parameters skip SQLAlchemy's per-row work, which would otherwise be most
of the cost.

On a server, a batch write is one ``UPDATE`` per chunk of rows in id
order::

    UPDATE image_locations
       SET meta_data = CASE WHEN id IN (<group 1>) THEN :new1 ... END,
           updated_at = :now
     WHERE id IN (<the chunk>) AND deleted = false AND status = 'active'
       AND ((id IN (<group 1>) AND meta_data = :old1) OR ...)

(a group: the rows that go from one text to another).  Each row changes
only if it still holds exactly the text that was read and is still live,
and rows are locked in id order (an index range scan of the primary key;
PostgreSQL is kept off bitmap and sequential scans for that statement),
the order in which Glance's own image save updates an image's locations,
so the two never deadlock.  SQLite locks the whole database instead: there
it is one cheaper ``UPDATE`` per pair of texts.
"""

import dataclasses
from typing import Iterable, Sequence

import sqlalchemy as sa

from multistore_prefix.db import models
from multistore_prefix.db import sql

_L = models.image_locations


#: Rows per UPDATE on SQLite, whose statements take at most 32766
#: parameters; a server takes a whole batch in one.
SQLITE_CHUNK = 2000


SERVER_CHUNK = 5000


@dataclasses.dataclass(frozen=True)
class Current:
    """A location row as it is now, locked until the transaction ends.

    :ivar url: ``value`` (``bytes`` on SQLite when not UTF-8).
    :ivar text: ``meta_data`` (likewise).
    :ivar live: not deleted and ``active``.
    """

    url: str | bytes
    text: str | bytes | None
    live: bool


def set_metadata(conn, writes: Sequence[tuple], now) -> int:
    """Compare-and-swap ``meta_data`` of many rows; returns rows changed.

    :param writes: ``(location id, text read, new text)``, any order; a
        location at most once.
    :param now: the ``updated_at`` to write (a naive UTC datetime).
    """
    if not writes:
        return 0
    dialect = conn.dialect
    stamp = _bind(dialect, _L.c.updated_at, now)
    if dialect.name == 'sqlite':
        statements = _group_updates(writes, stamp)
    else:
        ordered = sorted(writes, key=_first)
        statements = (_case_update(dialect,
                                   ordered[start:start + SERVER_CHUNK],
                                   stamp)
                      for start in range(0, len(ordered), SERVER_CHUNK))
    changed = 0
    for statement, params in statements:
        changed += conn.exec_driver_sql(statement, params).rowcount
    return changed


def _group_updates(writes, stamp):
    """SQLite: one UPDATE per (text read, new text), a chunk at a time.

    The writer holds the whole database's lock, so the order rows are
    written in cannot deadlock anyone, and these statements are cheaper
    than one with a CASE per row.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for location_id, old, new in writes:
        groups.setdefault((old, new), []).append(location_id)
    for (old, new), ids in groups.items():
        for start in range(0, len(ids), SQLITE_CHUNK):
            chunk = ids[start:start + SQLITE_CHUNK]
            yield (f'UPDATE image_locations SET meta_data = ?, '
                   f'updated_at = ? WHERE id IN '
                   f'({", ".join(["?"] * len(chunk))}) AND meta_data = ? '
                   f"AND deleted = 0 AND status = 'active'",
                   (new, stamp, *chunk, old))


def lock_current(conn, ids: Iterable[int],
                 lock: bool = True) -> dict[int, Current]:
    """The rows of ``ids`` as they are now, locked in id order.

    On SQLite the writer holds the database lock already.

    :param lock: ``False``: only read them (a dry run).
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
            query = query.with_for_update()
        for location_id, url, text, deleted, status in conn.execute(query):
            found[location_id] = Current(
                sql.utf8_or_bytes(url), sql.utf8_or_bytes(text),
                not deleted and status == 'active')
    return found


def _first(write):
    return write[0]


def _case_update(dialect, writes, stamp) -> tuple[str, tuple]:
    """The UPDATE of one chunk (see the module docstring)."""
    name = dialect.name
    mark = '?' if name == 'sqlite' else '%s'
    groups: dict[tuple[str, str], list[int]] = {}
    for location_id, old, new in writes:
        groups.setdefault((old, new), []).append(location_id)
    params: list = []

    def among(ids):
        if name == 'postgresql':
            params.append(ids)
            return 'id = ANY(%s)'
        params.extend(ids)
        return f'id IN ({", ".join([mark] * len(ids))})'

    def holds(text):
        params.append(text)
        return f'BINARY meta_data = {mark}' if name == 'mysql' else (
            f'meta_data = {mark}')

    setting = []
    for (_old, new), ids in groups.items():
        condition = among(ids)
        params.append(new)
        setting.append(f'WHEN {condition} THEN {mark}')
    params.append(stamp)
    chunk = among([w[0] for w in writes])
    swaps = []
    for (old, _new), ids in groups.items():
        swaps.append(f'({among(ids)} AND {holds(old)})')
    sql = (f'UPDATE image_locations SET meta_data = CASE '
           f'{" ".join(setting)} ELSE meta_data END, updated_at = {mark} '
           f'WHERE {chunk} AND deleted = {_false(name)} '
           f"AND status = 'active' AND ({' OR '.join(swaps)})")
    if name == 'postgresql':
        # An index scan of the primary key locks rows in id order; a
        # bitmap or sequential scan would lock them in heap order.
        sql = ('SET LOCAL enable_bitmapscan = off; '
               'SET LOCAL enable_seqscan = off; ' + sql)
    return sql, tuple(params)


def _false(name):
    return '0' if name in ('sqlite', 'mysql') else 'false'


def _bind(dialect, column, value):
    """``value`` as the DBAPI wants it for ``column`` (SQLite: text)."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process else value
