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

"""Live locations in bulk: keyset reads for the backfill.

The statements are compiled once and run as the batch writes'
(:mod:`multistore_prefix.db.batches`): errors translated by oslo.db,
rows without SQLAlchemy's per-row work.
"""

from typing import NamedTuple

import sqlalchemy as sa

from multistore_prefix.db import models
from multistore_prefix.db import sql
from multistore_prefix import metadata as metadata_text

_L = models.image_locations
_I = models.images

#: ``meta_data`` or URL text longer than this is not read with its batch:
#: such rows are read, decided and written one at a time, so a batch's
#: memory is bounded whatever the size of the metadata.
LARGE_TEXT = 8192
#: MySQL's TEXT holds at most this many bytes (Glance's ``meta_data``).
MYSQL_TEXT_BYTES = 65535


class Row(NamedTuple):
    """A location row as read to be decided.

    ``url`` and ``text`` (``meta_data``) are ``bytes`` on SQLite when not
    UTF-8, and both :data:`~multistore_prefix.metadata.LARGE` in a batch
    row that holds a text longer than :data:`LARGE_TEXT`.
    """

    location_id: int
    image_id: str
    url: str | bytes | metadata_text.Large
    text: str | bytes | metadata_text.Large | None


def live_conditions(shard_low: str | None = None,
                    shard_high: str | None = None,
                    join: bool = True) -> list:
    """Conditions for the live locations (of live images, with ``join``).

    :param join: ``images`` is joined and its rows checked; else the
        caller leaves out the dead images' rows itself
        (:func:`dead_image_ids`).
    """
    where = [sql.live_location(_L, _I if join else None)]
    if shard_low is not None:
        where.append(_L.c.image_id >= shard_low)
    if shard_high is not None:
        where.append(_L.c.image_id < shard_high)
    return where


def dead_image_ids(conn, limit: int) -> frozenset[str] | None:
    """The ids of the dead images, or ``None`` when there are more.

    Read once per run: leaving their rows out of each batch in this
    process costs a set lookup per row, where a join or a ``NOT IN``
    costs the database a lookup per row or a scan of ``images`` per batch
    (``status`` has no index in Glance's schema).  An image that dies
    during the run is caught by the write, which checks the location's
    own status (Glance changes it when it deletes an image).
    """
    ids = conn.execute(sa.select(_I.c.id).where(sa.not_(sql.live_image(_I)))
                       .limit(limit + 1)).scalars().all()
    return None if len(ids) > limit else frozenset(ids)


def count_live(conn, shard_low=None, shard_high=None) -> int:
    """How many live locations a scan will read.

    SQLite has no hash join: joining ``images`` looks up each location's
    image by its text key (2 s a million locations, on a core the run
    needs), so there the dead images' ids are gathered once and each
    location checked against them (``NOT IN``, 0.3 s).  A server hashes
    the join, and a ``NOT IN`` too big for its memory would compare row
    by row.
    """
    if conn.dialect.name != 'sqlite':
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(_L.join(_I, _I.c.id == _L.c.image_id))
            .where(*live_conditions(shard_low, shard_high))).scalar_one()
    dead = sa.select(_I.c.id).where(sa.not_(sql.live_image(_I)))
    return conn.execute(
        sa.select(sa.func.count()).select_from(_L)
        .where(*live_conditions(shard_low, shard_high, join=False),
               _L.c.image_id.not_in(dead))).scalar_one()


class BatchReader:
    """Reads live locations in id order, a batch at a time.

    The statement is compiled once per reader.  A row with a long text
    comes as :data:`~multistore_prefix.metadata.LARGE` (read it with
    :func:`read_one`); on SQLite, text that is not UTF-8 comes as
    ``bytes`` instead of failing the batch.

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
        # SQL text, positional names and fixed values.
        compiled = query.compile(dialect=self.dialect, compile_kwargs={
            'render_postcompile': True})
        literal = {key: value for key, value
                   in compiled.construct_params().items()
                   if not key.startswith('b_')}
        return (str(compiled),
                compiled.positiontup if compiled.positional else None,
                literal)

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
        # Plain tuples in Row's order, unpacked by the decider: building a
        # Row each made the SQLite backfill 7% slower (bench_backfill).
        for location_id, image_id, url, text, large in raw:
            if image_id in dead:
                continue
            if large:
                url = text = metadata_text.LARGE
            elif as_bytes:
                url = sql.utf8_or_bytes(url)
                text = sql.utf8_or_bytes(text)
            rows.append((location_id, image_id, url, text))
        return rows, raw[-1][0]


def _fetch(conn, compiled, values) -> list[tuple]:
    text, names, literal = compiled
    params = {**literal, **values}
    if names is not None:
        params = tuple(params[name] for name in names)
    result = conn.exec_driver_sql(text, params)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _guarded(column, as_bytes: bool):
    """The column when it is short (as bytes: decoded by the caller)."""
    value = sa.cast(column, sa.LargeBinary) if as_bytes else column
    short = sa.func.length(column) <= sa.bindparam('b_large', LARGE_TEXT)
    return sa.case((short, value), else_=sa.null())


def read_one(conn, location_id: int) -> Row | None:
    """One location, whatever its size."""
    rows = _rows(conn, _L.c.id == location_id)
    return rows[0] if rows else None


def image_rows(conn, image_id: str) -> list[Row]:
    """A live image's live locations (as :func:`read_one`), by id."""
    return _rows(conn, _L.c.image_id == image_id,
                 *live_conditions(), join=True)


def _rows(conn, *where, join: bool = False) -> list[Row]:
    sqlite = conn.dialect.name == 'sqlite'
    query = sa.select(_L.c.id, _L.c.image_id,
                      sql.text_as_stored(_L.c.value, sqlite),
                      sql.text_as_stored(_L.c.meta_data, sqlite))
    if join:
        query = query.join(_I, _I.c.id == _L.c.image_id)
    return [Row(location_id, image_id, sql.utf8_or_bytes(url),
                sql.utf8_or_bytes(text)) for location_id, image_id, url, text
            in conn.execute(query.where(*where).order_by(_L.c.id))]


def metadata_limit(conn) -> int | None:
    """The most bytes ``meta_data`` holds here (``None``: no limit)."""
    if conn.dialect.name != 'mysql':
        return None
    found = conn.exec_driver_sql(
        "SELECT character_octet_length FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND table_name = 'image_locations' "
        "AND column_name = 'meta_data'").scalar()
    return int(found) if found else MYSQL_TEXT_BYTES
