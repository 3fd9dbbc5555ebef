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


"""Shards: N workers, each on its own share of the images."""

import dataclasses

_HEX_SPACE = 16 ** 8


@dataclasses.dataclass(frozen=True)
class Shard:
    """One worker's share of the images: ``K/N``, K from 1 to N.

    Image ids are split into N ranges of their text, which partition every
    possible id (UUIDs spread evenly), so N workers cover each location
    exactly once.

    :ivar index: K, from 1.
    :ivar count: N.
    """

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> 'Shard':
        """``'K/N'`` -> Shard; a clear ValueError otherwise."""
        try:
            index, count = (int(part) for part in text.split('/'))
        except ValueError:
            raise ValueError(f'--shard {text!r}: write K/N, e.g. 1/4 for '
                             f'the first of four workers') from None
        if count < 1 or not 1 <= index <= count:
            raise ValueError(f'--shard {text!r}: K must be between 1 and N')
        return cls(index, count)

    def bounds(self) -> tuple[str | None, str | None]:
        """[low, high) of the image ids of this shard (None: unbounded)."""
        def boundary(k):
            return format(k * _HEX_SPACE // self.count, '08x')
        low = boundary(self.index - 1) if self.index > 1 else None
        high = boundary(self.index) if self.index < self.count else None
        return low, high

    def __str__(self):
        return f'{self.index}/{self.count}'
