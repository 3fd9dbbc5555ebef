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

"""Live locations in bulk: keyset reads and compare-and-swap batch writes.

The statements of the backfill, beside the single-location ones of
:mod:`multistore_prefix.db.api`.  They are written per engine and run
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

from multistore_prefix.db import api
from multistore_prefix.db import models

_L = models.image_locations
_I = models.images

#: Image statuses whose locations are not live, even with ``deleted = 0``.
DEAD_IMAGE_STATUSES = ('killed', 'deleted', 'pending_delete')
#: ``meta_data`` or URL text longer than this is not read with its batch:
#: such rows are read, decided and written one at a time, so a batch's
#: memory is bounded whatever the size of the metadata.
LARGE_TEXT = 8192
#: Rows per UPDATE on SQLite, whose statements take at most 32766
#: parameters; a server takes a whole batch in one.
SQLITE_CHUNK = 2000
SERVER_CHUNK = 5000
#: MySQL's TEXT holds at most this many bytes (Glance's ``meta_data``).
MYSQL_TEXT_BYTES = 65535


class Large:
    """A text too long to read with its batch: read it with read_one()."""

    __slots__ = ()

    def __repr__(self):
        return '<too long to read with its batch>'


#: The one :class:`Large`.
LARGE = Large()


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


def live_conditions(shard_low: str | None = None,
                    shard_high: str | None = None,
                    join: bool = True) -> list:
    """Conditions for the live locations (of live images, with ``join``).

    :param join: ``images`` is joined and its rows checked; else the
        caller leaves out the dead images' rows itself
        (:func:`dead_image_ids`).
    """
    where = [_L.c.deleted == sa.false(), _L.c.status == 'active']
    if join:
        where += [_I.c.deleted == sa.false(),
                  _I.c.status.not_in(DEAD_IMAGE_STATUSES)]
    if shard_low is not None:
        where.append(_L.c.image_id >= shard_low)
    if shard_high is not None:
        where.append(_L.c.image_id < shard_high)
    return where


def _dead_image():
    return sa.or_(_I.c.deleted == sa.true(),
                  _I.c.status.in_(DEAD_IMAGE_STATUSES))


def count_dead_images(conn) -> int:
    """Images whose locations are not live."""
    return conn.execute(sa.select(sa.func.count()).select_from(_I).where(
        _dead_image())).scalar_one()


def dead_image_ids(conn, limit: int) -> frozenset[str] | None:
    """The ids of the dead images, or ``None`` when there are more.

    Read once per run: leaving their rows out of each batch in this
    process costs a set lookup per row, where a join or a ``NOT IN``
    costs the database a lookup per row or a scan of ``images`` per batch
    (``status`` has no index in Glance's schema).  An image that dies
    during the run is caught by the write, which checks the location's
    own status (Glance changes it when it deletes an image).
    """
    ids = conn.execute(sa.select(_I.c.id).where(_dead_image())
                       .limit(limit + 1)).scalars().all()
    return None if len(ids) > limit else frozenset(ids)


def count_live(conn, shard_low=None, shard_high=None) -> int:
    """How many live locations a scan will read."""
    return conn.execute(
        sa.select(sa.func.count())
        .select_from(_L.join(_I, _I.c.id == _L.c.image_id))
        .where(*live_conditions(shard_low, shard_high))).scalar_one()


class BatchReader:
    """Reads live locations in id order, a batch at a time.

    The statement is compiled once per reader.  A row is ``(id, image_id,
    url, meta_data)``; in a row with a text longer than :data:`LARGE_TEXT`
    both come as :data:`LARGE` (read it with :func:`read_one`), and on
    SQLite text that is not UTF-8 comes as ``bytes`` instead of failing the
    batch.

    :ivar dead: ids of images whose rows are left out here (``None``: the
        statement joins ``images`` and checks them itself).
    """

    def __init__(self, dialect, shard_low=None, shard_high=None,
                 dead: frozenset[str] | None = None):
        self.dialect = dialect
        self.dead = dead
        self._sqlite = dialect.name == 'sqlite'
        self._text = self._statement(shard_low, shard_high, False)
        # SQLite keeps any bytes as text, and its driver fails the whole
        # fetch on one that is not UTF-8: such a batch is read again as
        # bytes, decoded here row by row.
        self._bytes = (self._statement(shard_low, shard_high, True)
                       if self._sqlite else None)

    def _statement(self, shard_low, shard_high, as_bytes: bool):
        join = self.dead is None
        source = _L.join(_I, _I.c.id == _L.c.image_id) if join else _L
        large = sa.bindparam('b_large', LARGE_TEXT)
        query = (sa.select(_L.c.id, _L.c.image_id,
                           _guarded(_L.c.value, as_bytes),
                           _guarded(_L.c.meta_data, as_bytes),
                           sa.or_(sa.func.length(_L.c.value) > large,
                                  sa.func.length(_L.c.meta_data) > large))
                 .select_from(source)
                 .where(_L.c.id > sa.bindparam('b_after', 0),
                        *live_conditions(shard_low, shard_high, join))
                 .order_by(_L.c.id).limit(sa.bindparam('b_limit', 1)))
        return _compile(query, self.dialect)

    def read(self, conn, after: int, limit: int
             ) -> tuple[list[tuple], int | None]:
        """(rows, the last id read: ``None`` at the end of the table)."""
        values = {'b_after': after, 'b_limit': limit, 'b_large': LARGE_TEXT}
        try:
            raw = _fetch(conn, self._text, values)
            as_bytes = False
        except Exception as exc:
            if self._bytes is None or 'decode' not in str(exc):
                raise
            raw = _fetch(conn, self._bytes, values)
            as_bytes = True
        if not raw:
            return [], None
        dead = self.dead or ()
        rows = []
        for location_id, image_id, url, text, large in raw:
            if image_id in dead:
                continue
            if large:
                url = text = LARGE
            elif as_bytes:
                url = api.utf8_or_bytes(url)
                text = api.utf8_or_bytes(text)
            rows.append((location_id, image_id, url, text))
        return rows, raw[-1][0]


def _fetch(conn, compiled, values) -> list[tuple]:
    sql, names, literal = compiled
    result = conn.exec_driver_sql(sql, _params(names, literal, values))
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _guarded(column, as_bytes: bool):
    """The column when it is short (as bytes: decoded by the caller)."""
    value = sa.cast(column, sa.LargeBinary) if as_bytes else column
    short = sa.func.length(column) <= sa.bindparam('b_large', LARGE_TEXT)
    return sa.case((short, value), else_=sa.null())


def read_one(conn, location_id: int) -> tuple | None:
    """``(id, image_id, url, meta_data)`` of one location, whatever size."""
    sqlite = conn.dialect.name == 'sqlite'
    row = conn.execute(sa.select(
        _L.c.id, _L.c.image_id, api.text_as_stored(_L.c.value, sqlite),
        api.text_as_stored(_L.c.meta_data, sqlite))
        .where(_L.c.id == location_id)).first()
    if row is None:
        return None
    return (row[0], row[1], api.utf8_or_bytes(row[2]),
            api.utf8_or_bytes(row[3]))


def metadata_limit(conn) -> int | None:
    """The most bytes ``meta_data`` holds here (``None``: no limit)."""
    if conn.dialect.name != 'mysql':
        return None
    found = conn.exec_driver_sql(
        "SELECT character_octet_length FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND table_name = 'image_locations' "
        "AND column_name = 'meta_data'").scalar()
    return int(found) if found else MYSQL_TEXT_BYTES


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
    for sql, params in statements:
        changed += conn.exec_driver_sql(sql, params).rowcount
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
        query = (sa.select(_L.c.id, api.text_as_stored(_L.c.value, sqlite),
                           api.text_as_stored(_L.c.meta_data, sqlite),
                           _L.c.deleted, _L.c.status)
                 .where(_L.c.id.in_(ids[start:start + SQLITE_CHUNK]))
                 .order_by(_L.c.id))
        if lock:
            query = query.with_for_update()
        for location_id, url, text, deleted, status in conn.execute(query):
            found[location_id] = Current(
                api.utf8_or_bytes(url), api.utf8_or_bytes(text),
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


def _compile(statement, dialect):
    """SQL text, positional names and fixed values of a statement."""
    sql = statement.compile(dialect=dialect,
                            compile_kwargs={'render_postcompile': True})
    names = sql.positiontup if sql.positional else None
    literal = {key: value for key, value in sql.construct_params().items()
               if not key.startswith('b_')}
    return str(sql), names, literal


def _params(names, literal, values):
    params = {**literal, **values}
    if names is None:
        return params
    return tuple(params[name] for name in names)
