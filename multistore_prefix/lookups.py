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

"""Backend-assisted resolution: ask the stores' backends about a URL.

Some legacy URLs name no store at all (``cinder://<volume id>``): no prefix
can own them, only the backend knows.  The stores whose driver offers a
lookup (:meth:`~multistore_prefix.drivers.base.Driver.backend_lookup`) are
asked; exactly one must say "mine".  This runs only for URLs no prefix owns.
"""

import concurrent.futures
from typing import Iterable

from multistore_prefix.drivers import base
from multistore_prefix import location_map as lmap
from multistore_prefix import masking
from multistore_prefix import urls

# Seconds a store's backend has to answer about one URL, retries included.
TIMEOUT = 10.0
# Questions in flight at once, across stores and URLs.
MAX_WORKERS = 8

# When no store says "mine", the most actionable reason wins: a backend
# that could not answer may still own it (rerun later); one that refused
# needs credentials; a missing object needs a look.
_PRECEDENCE = (base.UNAVAILABLE, base.FORBIDDEN, base.NOT_FOUND,
               base.ELSEWHERE)


class BackendLookups:
    """(store id, lookup) of each store of a location map that has one."""

    def __init__(self, lookups: Iterable[tuple[str, object]],
                 timeout: float = TIMEOUT, max_workers: int = MAX_WORKERS):
        self.lookups = list(lookups)
        self.timeout = timeout
        self.max_workers = max_workers

    @classmethod
    def from_location_map(cls, location_map: lmap.LocationMap,
                          **kwargs) -> 'BackendLookups':
        found = []
        for store_id, entry in sorted(location_map.stores.items()):
            lookup = entry.store.backend_lookup()
            if lookup is not None:
                found.append((store_id, lookup))
        return cls(found, **kwargs)

    def __bool__(self) -> bool:
        return bool(self.lookups)

    def wants(self, url) -> bool:
        canon = _canonical(url)
        return canon is not None and any(
            lookup.wants(canon) for _, lookup in self.lookups)

    def resolve(self, url: str) -> base.Resolution:
        """Ask every store that wants ``url``; never raises."""
        canon = _canonical(url)
        if canon is None:
            return base.Resolution(None, lmap.INVALID_URL,
                                   f'{masking.mask_url(url)} cannot be '
                                   f'parsed')
        answers = []
        for store_id, lookup in self.lookups:
            if not lookup.wants(canon):
                continue
            try:
                answer = lookup.lookup(canon, self.timeout)
            except Exception as exc:  # a lookup must not raise; be sure
                answer = base.Resolution(
                    None, base.UNAVAILABLE, f'store {store_id}: lookup '
                    f'failed: {type(exc).__name__}')
            answers.append((store_id, answer))
        return _combine(url, answers)

    def resolve_many(self, urls_: Iterable[str]) -> dict[str, base.Resolution]:
        unique = list(dict.fromkeys(urls_))
        if not unique:
            return {}
        if len(unique) == 1 or self.max_workers <= 1:
            return {url: self.resolve(url) for url in unique}
        with concurrent.futures.ThreadPoolExecutor(
                max_workers=min(self.max_workers, len(unique)),
                thread_name_prefix='backend-lookup') as pool:
            return dict(zip(unique, pool.map(self.resolve, unique)))


def _canonical(url):
    try:
        return urls.canonicalize(url)
    except urls.InvalidURL:
        return None


def _most_actionable(answers) -> str:
    reasons = {answer.reason for answer in answers}
    return next((r for r in _PRECEDENCE if r in reasons),
                min((r for r in reasons if r), default=base.ELSEWHERE))


def _combine(url, answers) -> base.Resolution:
    owners = [(store_id, answer) for store_id, answer in answers
              if answer.store]
    silent = [answer for _, answer in answers
              if answer.reason in base.UNANSWERED]
    if len(owners) == 1 and not silent:
        store_id, answer = owners[0]
        return base.Resolution(store_id, url=answer.url)
    masked = masking.mask_url(url)
    if len(owners) == 1:
        # Another store could not answer and might claim it too: one
        # owner is no proof, and a wrong store is worse than none.
        details = '; '.join(a.detail for a in silent if a.detail)
        return base.Resolution(
            None, _most_actionable(silent), masking.mask_text(
                f'store {owners[0][0]} claims {masked}, but not every '
                f'store could answer ({details}); run again when they can'))
    if owners:
        stores = ', '.join(store_id for store_id, _ in owners)
        return base.Resolution(None, lmap.CONFLICT, f'the backends of '
                               f'stores {stores} all claim {masked}')
    if not answers:
        return base.Resolution(None, lmap.NO_PREFIX,
                               f'no store prefix or backend owns {masked}')
    reason = _most_actionable(answer for _, answer in answers)
    details = '; '.join(answer.detail for _, answer in answers
                        if answer.detail)
    if reason == base.ELSEWHERE:
        details = (f'no configured store claims it ({details})' if details
                   else 'no configured store claims it')
    return base.Resolution(None, reason, masking.mask_text(details))
