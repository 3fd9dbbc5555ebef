#!/usr/bin/env python3
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

"""Resolution speed and correctness: LocationMap.resolve against Glance.

Glance's current rule (glance/common/store_utils.py): parse the scheme, loop
over the stores of that scheme in configuration order, and take the first
whose ``url_prefix`` the URL starts with.  Both run here on the same URLs,
at 2, 100 and 1,000 configured file stores whose directories share string
prefixes (``/srv/glance/images1`` and ``/srv/glance/images10``), as
directories of real deployments do.

It prints figures; it never fails on timing.  Run:

    python benchmarks/bench_resolve.py [--urls N] [--repeat R]
"""

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid

from oslo_config import cfg

from multistore_prefix import glance_rule
from multistore_prefix import location_map as lmap


def write_conf(directory: str, count: int) -> str:
    """A glance-api.conf with ``count`` file stores."""
    lines = ['[DEFAULT]', 'enabled_backends = ' + ', '.join(
        f'store{i}:file' for i in range(count))]
    for i in range(count):
        lines += [f'[store{i}]',
                  f'filesystem_store_datadir = /srv/glance/images{i or ""}']
    path = os.path.join(directory, f'glance-api-{count}.conf')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def rate(resolve, urls, repeat):
    """Best resolutions per second over ``repeat`` passes."""
    best = float('inf')
    for _ in range(repeat):
        start = time.perf_counter()
        for url in urls:
            resolve(url)
        best = min(best, time.perf_counter() - start)
    return len(urls) / best


def wrong(resolve, urls, expected):
    return sum(1 for url, want in zip(urls, expected) if resolve(url) != want)


def non_canonical(url: str) -> str:
    """The same location as legacy rows often spell it."""
    return url.replace('file:///', 'FILE://localhost/', 1).replace(
        '/images', '/./images', 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--urls', type=int, default=200_000,
                        help='URLs per store count (default 200000)')
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed passes; the best counts (default 3)')
    parser.add_argument('--stores', default='2,100,1000',
                        help='store counts (default 2,100,1000)')
    args = parser.parse_args(argv)

    print(f'Python {platform.python_version()} '
          f'({platform.python_implementation()}), {os.cpu_count()} CPUs, '
          f'{args.urls} URLs per row, best of {args.repeat}')
    header = (f'{"stores":>7} {"ours res/s":>12} {"glance res/s":>13} '
              f'{"speedup":>8} {"ours wrong":>11} {"glance wrong":>13} '
              f'{"ours non-canonical res/s":>25}')
    print(header)
    print('-' * len(header))
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(c) for c in args.stores.split(',')):
            conf = cfg.ConfigOpts()
            conf(['--config-file', write_conf(tmp, count)],
                 default_config_files=[])
            location_map = lmap.LocationMap.from_config(conf)
            glance = glance_rule.GlanceFirstMatch(location_map).resolve
            owners = [i % count for i in range(args.urls)]
            urls = [f'file:///srv/glance/images{i or ""}/{uuid.uuid4()}'
                    for i in owners]
            expected = [f'store{i}' for i in owners]
            odd = [non_canonical(u) for u in urls[:args.urls // 10]]
            ours_rate = rate(location_map.resolve, urls, args.repeat)
            glance_rate = rate(glance, urls, args.repeat)
            odd_rate = rate(location_map.resolve, odd, 1)
            ours_wrong = wrong(location_map.resolve, urls, expected)
            ours_wrong += wrong(location_map.resolve, odd,
                                expected[:len(odd)])
            glance_wrong = wrong(glance, urls, expected)
            rates[count] = ours_rate
            print(f'{count:>7} {ours_rate:>12,.0f} {glance_rate:>13,.0f} '
                  f'{ours_rate / glance_rate:>7.1f}x '
                  f'{ours_wrong:>6}/{len(urls) + len(odd):<5}'
                  f'{glance_wrong:>7}/{len(urls):<6}'
                  f'{odd_rate:>25,.0f}')
    counts = sorted(rates)
    if len(counts) > 1:
        low, high = counts[0], counts[-1]
        print(f'\nthroughput at {high} stores / at {low} stores: '
              f'{rates[high] / rates[low]:.2f} (1.0 = no slow-down)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
