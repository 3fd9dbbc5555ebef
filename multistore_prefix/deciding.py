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

The one rule engine of all three entrances (``repo.get``, the glance-api
filter, ``backfill``): rows (metadata as text) in, a :class:`Batch` of
typed rows out; it writes and reports nothing itself.  Legacy rows repeat
a handful of metadata texts (``{}``), so each short text is decided once;
long ones every time, so the caches stay small whatever the metadata size.
"""

import dataclasses
import functools
from typing import Callable, NamedTuple

from multistore_prefix import crypt
from multistore_prefix import location_map as lmap
from multistore_prefix import metadata as metadata_text
from multistore_prefix import resolver as resolver_mod
from multistore_prefix import urls

#: The new metadata would not fit in the column (MySQL's TEXT).
TOO_LONG = 'metadata-too-long'
#: A stored URL that is not one, and the key does not decrypt.
UNDECRYPTABLE = 'undecryptable-url'

#: Texts up to this long are decided once and remembered.
CACHED_TEXT = 1024
#: At most this many texts remembered (then the caches start over).
CACHE_SIZE = 4096

_BAD, _LEGACY, _INVALID, _NAMED, _TRAIN = range(5)
_MISSING = metadata_text.MISSING


@dataclasses.dataclass
class Batch:
    """One batch, read and decided; nothing reported or written yet.

    :ivar last_id: the highest location id read (the next batch's start).
    :ivar already_set: locations that name an enabled store.
    :ivar large: ids of the rows too long to read with the batch.
    """

    scanned: int
    last_id: int
    already_set: int = 0
    wrong: list['Wrong'] = dataclasses.field(default_factory=list)
    unresolved: list['Unresolved'] = dataclasses.field(default_factory=list)
    writes: list['Write'] = dataclasses.field(default_factory=list)
    asked: list['Rewrite'] = dataclasses.field(default_factory=list)
    large: list[int] = dataclasses.field(default_factory=list)
    rewrites: list['Rewrite'] = dataclasses.field(default_factory=list)

    def add(self, other: 'Batch') -> None:
        """Take in what ``other`` (one row decided alone) holds."""
        self.already_set += other.already_set
        for name, rows in vars(other).items():
            if isinstance(rows, list):
                getattr(self, name).extend(rows)


class Wrong(NamedTuple):
    """A row that names an enabled store which certainly does not hold it."""

    location_id: int
    image_id: str
    url: str
    named: str
    owner: str


class Unresolved(NamedTuple):
    """A row left as it is.

    :ivar store: the store it would get, when only the write stands in
        the way (:data:`TOO_LONG`); else ``None``.
    """

    location_id: int
    image_id: str
    url: object
    reason: str
    detail: str
    store: str | None = None


class Write(NamedTuple):
    """A row to give its store.

    :ivar text: its ``meta_data`` as read (the compare-and-swap's value).
    :ivar new_text: the text to write (the store spliced in).
    :ivar previous: the ``store`` value it had (a retired store's name,
        or a value that was not a name), or ``None``.
    :ivar fixing: the wrong enabled store it corrects, or ``None``.
    """

    location_id: int
    image_id: str
    url: str
    text: str
    new_text: str
    store: str
    previous: object
    fixing: str | None


class Rewrite(NamedTuple):
    """A row whose URL and store change (a compare-and-swap of both).

    Asked of a store's backend (no prefix owns the URL), it has no
    ``store`` nor ``new_url`` until :meth:`Decider.ask_backends`.
    """

    location_id: int
    image_id: str
    url: str
    metadata: dict
    previous: object
    store: str | None = None
    new_url: str | None = None


class _Decided(NamedTuple):
    """What one metadata text says (remembered by text).

    :ivar members: the parsed :class:`~multistore_prefix.metadata.Members`
        (``_BAD``: the :class:`~multistore_prefix.metadata.Bad` reason;
        ``_TRAIN``: the detail to report).
    """

    kind: int
    members: object
    store: object


class Decider:
    """Decides each row's need with the location map.

    :ivar fix_wrong_stores: also write the owner into locations that name
        a wrong enabled store.
    :ivar lookups: the backends' lookups for URLs no prefix owns, or
        ``None``.
    :ivar text_limit: asked, on the first write only, for the most bytes
        ``meta_data`` holds (``None``: no limit); given as that callable
        or as its answer.
    :ivar glance_rules: inside glance-api, where Glance's own rule writes
        a store next: metadata is read as Glance reads it (``NaN`` too),
        and a ``store`` value Glance's rule replaces
        (:func:`~multistore_prefix.resolver.glance_replaces`) gets the
        owner's name first.  Train's ``backend`` key is then no reason to
        wait either: Glance adds a ``store`` beside it.
    :ivar strip_s3_credentials: an S3 URL that carries credentials is
        written without them, with the store it gets or keeps.
    :ivar cipher: a :class:`~multistore_prefix.crypt.UrlCipher` for the
        URLs Glance stored encrypted, or ``None``.
    """

    def __init__(self, resolver: resolver_mod.Resolver, *,
                 fix_wrong_stores: bool = False, lookups=None,
                 text_limit: int | None | Callable[[], int | None] = None,
                 glance_rules: bool = False,
                 strip_s3_credentials: bool = False, cipher=None):
        self.resolver = resolver
        self.location_map = resolver.location_map
        self.fix_wrong_stores = fix_wrong_stores
        self.lookups = lookups or None
        self.text_limit = functools.cache(
            text_limit if callable(text_limit) else lambda: text_limit)
        self.glance_rules = glance_rules
        self.strip_s3_credentials = strip_s3_credentials
        self.cipher = cipher
        self._decided: dict[str, _Decided] = {}
        self._new_text: dict[tuple[str, str], str] = {}

    def classify(self, rows, last_id: int) -> Batch:
        """Decide a batch read, rows in :class:`~.db.scan.Row`'s order.

        :param last_id: the last location id read (rows of dead images
            may have been left out after it).
        """
        batch = Batch(scanned=len(rows), last_id=last_id)
        # The common row (legacy text seen before, URL a store owns) is
        # decided inline, from the caches; any other goes through one().
        decided_texts, new_texts = self._decided, self._new_text
        resolve = self.location_map.resolve
        writes = batch.writes
        strip = self.strip_s3_credentials
        encrypted = self.cipher is not None
        for location_id, image_id, url, text in rows:
            decided = decided_texts.get(text)
            if (decided is not None and decided.kind == _LEGACY
                    and url.__class__ is str
                    and not (strip and '@' in url)
                    and not (encrypted and '://' not in url)):
                store = resolve(url)
                new = new_texts.get((text, store))
                if new is not None:
                    writes.append(Write(location_id, image_id, url, text,
                                        new, store, decided.store, None))
                    continue
            self.one(batch, location_id, image_id, url, text)
        return batch

    def one(self, batch: Batch, location_id, image_id, url, text) -> None:
        large = metadata_text.Large
        if url.__class__ is large or text.__class__ is large:
            batch.large.append(location_id)
            return
        if self.cipher is not None and url.__class__ is str and not (
                crypt.is_plain_url(url)):
            self._encrypted(batch, location_id, image_id, url, text)
            return
        if self.strip_s3_credentials:
            bare = urls.s3_without_credentials(url)
            if bare is not None:
                self._strip(batch, location_id, image_id, url, bare, text)
                return
        decided = self._decide(text)
        kind = decided.kind
        if kind == _NAMED:
            self._named(batch, location_id, image_id, url, text, decided)
            return
        # What the key held: a retired store's name, or (replaced) a value
        # that was not a name; for the report, and for --revert.
        previous = decided.store
        if kind == _BAD:
            reason, detail = resolver_mod.BAD_METADATA, str(decided.members)
        elif kind == _TRAIN:
            reason, detail = resolver_mod.BACKEND_KEY, decided.members
        elif kind == _INVALID and not self.resolver.replace_invalid_stores:
            reason = resolver_mod.INVALID_STORE
            detail = resolver_mod.invalid_store_detail(previous,
                                                       self.glance_rules)
        elif url.__class__ is not str:
            reason, detail = resolver_mod.BAD_LOCATION, (
                'the URL is not valid UTF-8' if isinstance(url, bytes)
                else f'the URL is {type(url).__name__}, not text')
        elif (store := self.location_map.resolve(url)) is not None:
            self._write(batch, location_id, image_id, url, text,
                        decided.members, store, previous, None)
            return
        else:
            why = self.location_map.explain(url)
            if (why.reason in lmap.LOOKUP_REASONS and self.lookups
                    and self.lookups.wants(url)):
                batch.asked.append(Rewrite(location_id, image_id, url,
                                           decided.members.to_dict(),
                                           previous))
                return
            reason, detail = why.reason or lmap.NO_PREFIX, why.detail
        batch.unresolved.append(Unresolved(location_id, image_id, url,
                                           reason, detail))

    def ask_backends(self, batch: Batch) -> None:
        """Each asked row becomes a :class:`Rewrite` or :class:`Unresolved`."""
        if not batch.asked:
            return
        answers = self.lookups.resolve_many(row.url for row in batch.asked)
        for row in batch.asked:
            answer = answers[row.url]
            if answer.store is None:
                batch.unresolved.append(Unresolved(
                    row.location_id, row.image_id, row.url, answer.reason,
                    answer.detail))
            else:
                batch.rewrites.append(row._replace(
                    store=answer.store, new_url=answer.url or row.url))
        batch.asked = []

    def _named(self, batch, location_id, image_id, url, text, decided):
        named = decided.store
        owner = self.resolver.wrong_store(named, url)
        if owner is None:
            batch.already_set += 1
            return
        batch.wrong.append(Wrong(location_id, image_id, url, named, owner))
        if self.fix_wrong_stores:
            self._write(batch, location_id, image_id, url, text,
                        decided.members, owner, named, named)

    def alone(self, location_id, image_id, url, text) -> Batch:
        """One row decided in a batch of its own (that scanned nothing)."""
        batch = Batch(scanned=0, last_id=location_id)
        self.one(batch, location_id, image_id, url, text)
        return batch

    def _encrypted(self, batch, location_id, image_id, stored, text) -> None:
        """A URL Glance stored encrypted: decided on its plain text.

        A write carries the URL as stored (the row it compares with); a
        URL rewrite is written back encrypted, as the row was.
        """
        url = self.cipher.decrypt(stored)
        if url is None:
            batch.unresolved.append(Unresolved(
                location_id, image_id, stored, UNDECRYPTABLE,
                f'the location\'s value is no URL, and {crypt.OPTION} does '
                f'not decrypt it: left as it is'))
            return
        alone = self.alone(location_id, image_id, url, text)
        # A backend's answer would be written back over the plain URL.
        alone.unresolved += [Unresolved(
            row.location_id, row.image_id, row.url, lmap.NO_PREFIX,
            'no store prefix owns this encrypted URL (backends are not '
            'asked about those)') for row in alone.asked]
        alone.asked = []
        alone.writes = [write._replace(url=stored) for write in alone.writes]
        alone.rewrites = [rewrite._replace(
            url=stored, new_url=self.cipher.encrypt(rewrite.new_url))
            for rewrite in alone.rewrites]
        batch.add(alone)

    def _strip(self, batch, location_id, image_id, url, bare, text) -> None:
        """An S3 URL with credentials: decided on the URL without them.

        Rewritten when the row ends with a store (one written or one it
        names already); otherwise it is left with its credentials and
        reported as decided, with the URL as stored.
        """
        alone = self.alone(location_id, image_id, bare, text)
        for name in ('unresolved', 'wrong', 'asked'):
            setattr(alone, name, [row._replace(url=url)
                                  for row in getattr(alone, name)])
        decided = self._decide(text)
        if alone.writes:
            store, previous = alone.writes[0].store, alone.writes[0].previous
        elif alone.already_set or (alone.wrong and not self.fix_wrong_stores):
            store, previous = decided.store, None
        else:
            batch.add(alone)
            return
        try:
            metadata = decided.members.to_dict()
            metadata_text.dump(metadata)  # NaN: not for this write
        except (ValueError, RecursionError):
            if alone.writes:
                alone.unresolved.append(Unresolved(
                    location_id, image_id, url, resolver_mod.BAD_METADATA,
                    'the metadata holds NaN or an infinity, which a URL '
                    'rewrite cannot write back: left as it is'))
        else:
            alone.already_set = 0
            alone.rewrites.append(Rewrite(location_id, image_id, url,
                                          metadata, previous, store, bare))
        alone.writes = []
        batch.add(alone)

    def _write(self, batch, location_id, image_id, url, text, members,
               store, previous, fixing) -> None:
        key = (text, store)
        new = self._new_text.get(key)
        if new is None:
            new = metadata_text.patch(members, {'store': store})
            limit = self.text_limit()
            if limit is not None and len(new) * 4 > limit and len(
                    new.encode('utf-8')) > limit:
                size = len(text.encode('utf-8')) + len(store) + 12
                batch.unresolved.append(Unresolved(
                    location_id, image_id, url, TOO_LONG,
                    f'adding "store" would make meta_data about {size} '
                    f'bytes; the column holds {limit}: left as it is', store))
                return
            # Only texts that fit are remembered (classify() trusts them).
            if len(text) <= CACHED_TEXT:
                if len(self._new_text) >= CACHE_SIZE:
                    self._new_text.clear()
                self._new_text[key] = new
        batch.writes.append(Write(location_id, image_id, url, text, new,
                                  store, previous, fixing))

    def _decide(self, text) -> '_Decided':
        decided = self._decided.get(text) if text.__class__ is str else None
        if decided is not None:
            return decided
        members = metadata_text.parse(text, standard=not self.glance_rules)
        if members.__class__ is metadata_text.Bad:
            decided = _Decided(_BAD, members, None)
        else:
            try:
                store = members.value('store')
            except (ValueError, RecursionError):  # checked by parse
                store = _MISSING
            if len(members.find('store')) > 1:
                decided = _Decided(_BAD, metadata_text.Bad(
                    'meta_data has the key "store" twice', text), None)
            else:
                state = resolver_mod.store_state(store,
                                                 self.location_map.stores)
                kind = {resolver_mod.MISSING: _LEGACY,
                        resolver_mod.STALE: _LEGACY,
                        resolver_mod.INVALID: _INVALID,
                        resolver_mod.ENABLED: _NAMED}[state]
                if self.glance_rules:
                    if kind == _INVALID and resolver_mod.glance_replaces(
                            store):
                        kind = _LEGACY
                elif kind == _LEGACY and members.find('backend'):
                    kind, members = _TRAIN, resolver_mod.BACKEND_KEY_DETAIL
                decided = _Decided(kind, members,
                                   None if store is _MISSING else store)
        if text.__class__ is str and len(text) <= CACHED_TEXT:
            if len(self._decided) >= CACHE_SIZE:
                self._decided.clear()
            self._decided[text] = decided
        return decided
