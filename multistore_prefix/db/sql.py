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


"""The pieces every statement of the database layer is made of.

Comparing exactly (a compare-and-swap must not follow MySQL's collation),
the live-row conditions (SQLAlchemy's, and compiled for the raw batch
statements), re-reading a row locked, and turning the database's own
refusals (a duplicate, a value too long, a lock) into this package's
errors.
"""

import contextlib
from typing import Any

from oslo_db import exception as db_exc
import sqlalchemy as sa
from sqlalchemy.ext import compiler as sa_compiler
# sa.ColumnElement is SQLAlchemy 2.0 only; this path is in 1.4 too.
from sqlalchemy.sql import expression as sa_expression

from multistore_prefix.db import exceptions
from multistore_prefix.db import models
from multistore_prefix import masking


class exact(sa.sql.functions.FunctionElement):
    """A column compared byte for byte.

    MySQL compares text by collation ('Bar' = 'bar', trailing spaces
    ignored); a compare-and-swap must not, so there it is ``BINARY col``.
    """

    inherit_cache = True
    name = 'exact'

    def __init__(self, column):
        super().__init__(column)
        self.type = column.type


@sa_compiler.compiles(exact)
def _compile_exact(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@sa_compiler.compiles(exact, 'mysql')
def _compile_exact_mysql(element, compiler, **kw):
    return 'BINARY %s' % compiler.process(element.clauses, **kw)


def holds(column: sa.Column, value: Any) -> sa_expression.ColumnElement:
    """``column`` holds exactly ``value`` (``IS NULL`` for ``None``)."""
    if value is None:
        return column.is_(None)
    if isinstance(column.type, sa.String):
        return exact(column) == value
    return column == value


def live(table) -> sa_expression.ColumnElement:
    """A row not soft-deleted (an image, a property, a tag, a location)."""
    return table.c.deleted == sa.false()


#: The image statuses whose locations are not live, even with
#: ``deleted = 0`` (Glance keeps a deleted image's data until it is gone).
DEAD_IMAGE_STATUSES = ('killed', 'deleted', 'pending_delete')
#: The one status of a live location (``pending_delete`` and ``deleted``
#: rows hold data on its way out).
LIVE_STATUS = 'active'


def live_location(locations, images=None) -> sa_expression.ColumnElement:
    """A location that holds its image's data now: the one definition.

    Not deleted and ``active`` (never a ``pending_delete`` one); with
    ``images`` (joined), of an image that is not deleted nor dying.  Every
    read and every write of a store uses it (the raw statements through
    :func:`live_location_text`, a locked row through
    :attr:`multistore_prefix.db.batches.Current.live`).
    """
    condition = sa.and_(live(locations), locations.c.status == LIVE_STATUS)
    if images is not None:
        condition = sa.and_(condition, live_image(images))
    return condition


def live_image(images) -> sa_expression.ColumnElement:
    """An image whose locations may be live: not deleted nor dying."""
    return sa.and_(live(images), images.c.status.not_in(DEAD_IMAGE_STATUSES))


def live_location_text(dialect, alias: str | None = None) -> str:
    """:func:`live_location` as SQL text, for a raw statement.

    :param alias: the name the statement gives ``image_locations``.
    """
    table = models.image_locations
    return _as_text(dialect, ('live', alias), lambda: live_location(
        table if alias is None else table.alias(alias)))


def holds_text(dialect, column: sa.Column, mark: str | None) -> str:
    """:func:`holds` as SQL text, for a raw statement.

    :param mark: the value's placeholder; ``None`` for the value ``None``.
    """
    return _as_text(dialect, ('holds', column.name, mark), lambda: holds(
        column, None if mark is None else sa.literal_column(mark)))


def _as_text(dialect, key, condition) -> str:
    """``condition()`` compiled once per dialect (values written in)."""
    key = (dialect.name, *key)
    text = _TEXT.get(key)
    if text is None:
        # A driver that formats doubles the ``%`` of a literal column.
        text = _TEXT[key] = str(condition().compile(
            dialect=dialect, compile_kwargs={'literal_binds': True})
        ).replace('%%', '%')
    return text


_TEXT: dict[tuple, str] = {}


def soft_delete(conn, table, now, *where, **values) -> int:
    """Mark the live rows ``where`` deleted, as Glance does; how many."""
    return conn.execute(
        sa.update(table).where(*where, live(table))
        .values(deleted=True, deleted_at=now, updated_at=now, **values)
    ).rowcount


def child(image_id, now, **values):
    return {'image_id': image_id, 'created_at': now, 'updated_at': now,
            'deleted': False, **values}


def locked(conn, table, *where):
    """Read a row again, locked until commit, seeing the latest commit."""
    return conn.execute(sa.select(table).where(*where)
                        .with_for_update()).mappings().first()


def same(a, b) -> bool:
    """Equal values of the same type (``1`` is not ``True`` here)."""
    return a is b or (type(a) is type(b) and a == b)


@contextlib.contextmanager
def rejected_as(image_id, label):
    """Turn the database's refusal of a value into ``Rejected``.

    MySQL refuses metadata longer than its column (Glance accepts metadata
    up to that limit; adding ``store`` may cross it); that statement alone
    fails, and the caller decides whether the transaction goes on.
    """
    try:
        yield
    except db_exc.DBDataError as exc:
        raise exceptions.Rejected(image_id, label,
                                  masking.mask_error(exc)) from exc


#: PostgreSQL's lock_not_available; MySQL's lock wait timeout and its
#: NOWAIT refusal (oslo.db reports MySQL's as a deadlock).
_BUSY_PGCODES = frozenset(('55P03',))
_BUSY_ERRNOS = frozenset((1205, 3572))


@contextlib.contextmanager
def busy_as(what, nowait=True):
    """Turn a ``NOWAIT`` lock refusal into ``Busy``."""
    try:
        yield
    except Exception as exc:
        orig = driver_error(exc)
        errno = getattr(orig, 'args', (None,))[:1]
        if nowait and (getattr(orig, 'pgcode', None) in _BUSY_PGCODES
                       or (errno and errno[0] in _BUSY_ERRNOS)):
            raise exceptions.Busy(what) from exc
        raise


@contextlib.contextmanager
def duplicate_as(image_id, kind, key):
    """Turn the database's duplicate-entry error into ``Duplicate``."""
    try:
        yield
    except db_exc.DBDuplicateEntry as exc:
        raise exceptions.Duplicate(image_id, kind, key) from exc


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception under oslo.db's and SQLAlchemy's."""
    # PostgreSQL's lock refusal comes untranslated by oslo.db.
    orig = getattr(exc, 'inner_exception', None) or exc
    return getattr(orig, 'orig', None) or orig


def text_as_stored(column, sqlite: bool):
    """SQLite stores any bytes as text; read them as bytes, decode here.

    Otherwise one row that is not UTF-8 would fail the whole read.
    """
    if not sqlite:
        return column
    return sa.cast(column, sa.LargeBinary).label(column.name)


def utf8_or_bytes(value):
    """Text as text; on SQLite, bytes that are not UTF-8 stay bytes."""
    if value.__class__ is not bytes:
        return value
    try:
        return value.decode('utf-8')
    except UnicodeDecodeError:
        return value
