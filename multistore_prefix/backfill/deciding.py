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


"""Deciding, row by row, what each live location needs.

Pure but for its caches: it reads rows and fills a :class:`Batch` with
what to write, what to report and what to ask the backends; it writes
nothing and reports nothing itself.  Legacy rows repeat a handful of
metadata texts (``{}``), so each short text is decided once; long ones
are decided every time, so the caches stay small whatever the metadata
size.
"""

import dataclasses

from multistore_prefix.db import locations as db_locations
from multistore_prefix import location_map as lmap
from multistore_prefix import metadata as metadata_text
from multistore_prefix import resolver as resolver_mod

BAD_METADATA = resolver_mod.BAD_METADATA
BAD_LOCATION = resolver_mod.BAD_LOCATION
INVALID_STORE = resolver_mod.INVALID_STORE
#: The new metadata would not fit in the column (MySQL's TEXT).
TOO_LONG = 'metadata-too-long'

#: Texts up to this long are decided once and remembered.
CACHED_TEXT = 1024
#: At most this many texts remembered (then the caches start over).
CACHE_SIZE = 4096

_BAD, _LEGACY, _INVALID, _NAMED = range(4)
_MISSING = metadata_text.MISSING


@dataclasses.dataclass
class Batch:
    """One batch, read and decided; nothing reported or written yet.

    :ivar scanned: locations read.
    :ivar last_id: the highest location id read (the next batch's start).
    :ivar already_set: locations that name an enabled store.
    :ivar wrong: (location id, image id, URL, store named, owner) of the
        locations that name the wrong enabled store.
    :ivar unresolved: (location id, image id, URL, reason, detail).
    :ivar writes: :data:`Write` tuples.
    :ivar asked: (location id, image id, URL, metadata, previous store)
        for the backends' lookups.
    :ivar large: ids of the rows too long to read with the batch.
    """

    scanned: int
    last_id: int
    already_set: int = 0
    wrong: list = dataclasses.field(default_factory=list)
    unresolved: list = dataclasses.field(default_factory=list)
    writes: list = dataclasses.field(default_factory=list)
    asked: list = dataclasses.field(default_factory=list)
    large: list = dataclasses.field(default_factory=list)


#: A write: (location id, image id, URL, text read, new text, store,
#: previous store or None, the wrong store it corrects or None).
Write = tuple


class Decider:
    """Decides each row's need with the location map.

    :ivar resolver: the :class:`~multistore_prefix.resolver.Resolver`
        (the stores, the wrong-store rule, the store-value rules).
    :ivar fix_wrong_stores: also write the owner into locations that name
        a wrong enabled store.
    :ivar lookups: the backends' lookups for URLs no prefix owns, or
        ``None``.
    :ivar text_limit: the most bytes ``meta_data`` holds (``None``: no
        limit).
    """

    def __init__(self, resolver: resolver_mod.Resolver, *,
                 fix_wrong_stores: bool = False, lookups=None,
                 text_limit: int | None = None):
        self.resolver = resolver
        self.location_map = resolver.location_map
        self.fix_wrong_stores = fix_wrong_stores
        self.lookups = lookups or None
        self.text_limit = text_limit
        self._decided: dict[str, tuple] = {}
        self._new_text: dict[tuple[str, str], str] = {}

    def classify(self, rows, last_id: int) -> Batch:
        """Decide a batch read: ``(id, image id, URL, meta_data)`` rows.

        :param last_id: the last location id read (rows of dead images
            may have been left out after it).
        """
        batch = Batch(scanned=len(rows), last_id=last_id)
        # The common row (legacy text seen before, URL a store owns) is
        # decided inline, from the caches; any other goes through one().
        decided_texts, new_texts = self._decided, self._new_text
        resolve = self.location_map.resolve
        writes = batch.writes
        for location_id, image_id, url, text in rows:
            decided = decided_texts.get(text)
            if (decided is not None and decided[0] == _LEGACY
                    and url.__class__ is str):
                store = resolve(url)
                new = new_texts.get((text, store))
                if new is not None:
                    writes.append((location_id, image_id, url, text, new,
                                   store, decided[2], None))
                    continue
            self.one(batch, location_id, image_id, url, text)
        return batch

    def one(self, batch: Batch, location_id, image_id, url, text) -> None:
        """Decide one row into ``batch``."""
        large = db_locations.Large
        if url.__class__ is large or text.__class__ is large:
            batch.large.append(location_id)
            return
        decided = self._decide(text)
        kind = decided[0]
        if kind == _NAMED:
            self._named(batch, location_id, image_id, url, text, decided)
            return
        if kind == _BAD:
            batch.unresolved.append((location_id, image_id, url,
                                     BAD_METADATA, decided[1]))
            return
        if kind == _INVALID and not self.resolver.replace_invalid_stores:
            batch.unresolved.append((
                location_id, image_id, url, INVALID_STORE,
                resolver_mod.invalid_store_detail(decided[2])))
            return
        if url.__class__ is not str:
            batch.unresolved.append((location_id, image_id, url,
                                     BAD_LOCATION, _bad_url(url)))
            return
        store = self.location_map.resolve(url)
        # What the key held: a retired store's name, or (replaced) a value
        # that was not a name; for the report, and for --revert.
        previous = decided[2]
        if store is not None:
            self._write(batch, location_id, image_id, url, text, decided[1],
                        store, previous, None)
            return
        why = self.location_map.explain(url)
        if (why.reason in lmap.LOOKUP_REASONS and self.lookups
                and self.lookups.wants(url)):
            batch.asked.append((location_id, image_id, url,
                                decided[1].to_dict(), previous))
            return
        batch.unresolved.append((location_id, image_id, url,
                                 why.reason or lmap.NO_PREFIX, why.detail))

    def _named(self, batch, location_id, image_id, url, text, decided):
        """A location that names an enabled store: right, or wrong?"""
        named = decided[2]
        owner = self.resolver.wrong_store(named, url)
        if owner is None:
            batch.already_set += 1
            return
        batch.wrong.append((location_id, image_id, url, named, owner))
        if self.fix_wrong_stores:
            self._write(batch, location_id, image_id, url, text, decided[1],
                        owner, named, named)

    def _write(self, batch, location_id, image_id, url, text, members,
               store, previous, fixing) -> None:
        new = self._with_store(text, members, store)
        if new is None:
            batch.unresolved.append((location_id, image_id, url, TOO_LONG,
                                     self._too_long(text, store)))
            return
        batch.writes.append((location_id, image_id, url, text, new, store,
                             previous, fixing))

    def _decide(self, text) -> tuple:
        """(kind, members or reason, store value) of a metadata text."""
        decided = self._decided.get(text) if text.__class__ is str else None
        if decided is not None:
            return decided
        members = metadata_text.parse(text)
        if members.__class__ is metadata_text.Bad:
            decided = (_BAD, members, None)
        else:
            try:
                store = members.value('store')
            except (ValueError, RecursionError):  # checked by parse
                store = _MISSING
            if len(members.find('store')) > 1:
                decided = (_BAD, metadata_text.Bad(
                    'meta_data has the key "store" twice', text), None)
            else:
                state = resolver_mod.store_state(store,
                                                 self.location_map.stores)
                kind = {resolver_mod.MISSING: _LEGACY,
                        resolver_mod.STALE: _LEGACY,
                        resolver_mod.INVALID: _INVALID,
                        resolver_mod.ENABLED: _NAMED}[state]
                decided = (kind, members,
                           None if store is _MISSING else store)
        if text.__class__ is str and len(text) <= CACHED_TEXT:
            if len(self._decided) >= CACHE_SIZE:
                self._decided.clear()
            self._decided[text] = decided
        return decided

    def _with_store(self, text, members, store) -> str | None:
        """``text`` with ``store`` set (``None``: it would not fit)."""
        key = (text, store)
        new = self._new_text.get(key)
        if new is not None:
            return new
        new = metadata_text.set_key(members, 'store', store)
        limit = self.text_limit
        if limit is not None and len(new) * 4 > limit and len(
                new.encode('utf-8')) > limit:
            return None
        # Only texts that fit are remembered (classify() trusts them).
        if len(text) <= CACHED_TEXT:
            if len(self._new_text) >= CACHE_SIZE:
                self._new_text.clear()
            self._new_text[key] = new
        return new

    def _too_long(self, text, store) -> str:
        size = len(text.encode('utf-8')) + len(store) + 12
        return (f'adding "store" would make meta_data about {size} bytes; '
                f'the column holds {self.text_limit}: left as it is')


def _bad_url(url) -> str:
    if isinstance(url, bytes):
        return 'the URL is not valid UTF-8'
    return f'the URL is {type(url).__name__}, not text'
