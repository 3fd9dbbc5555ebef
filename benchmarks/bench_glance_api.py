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


"""glance-api with the filter beside Glance alone, one run, side by side.

Two glance-api 33 under uWSGI (2 processes of 4 threads each) on one Glance
database (``glance-manage db sync``), one with the multistore_prefix filter
in its pipeline, one without (tests/glance_compat/deployment.py starts
them); two file stores whose directories share a string prefix
(``.../images`` and ``.../images2``).  Images are uploaded through
Glance's API into ``.../images2`` and made legacy by plain SQL.  For each
glance-api, on images of its own:

* wrong stores: one GET of each legacy image, then the store each location
  has in the database (every one belongs to the store of ``.../images2``);
* lost PATCHes: per legacy image, three GETs and one PATCH (a property
  added) released together; a PATCH Glance answered 200 whose property is
  not in the database afterwards is lost;
* GET latency (one client, requests to the two glance-api interleaved) on
  legacy images (each image's first GET) and on already resolved ones
  (the same images again): p50 and p99.

Targets (the issue's): 0 wrong and 0 lost with the filter; on resolved
images, p50 within 10% of Glance alone; on legacy images, faster than
Glance alone.  It prints PASS/MISS beside each; it never fails on timing.

Run it in the venv tools/glance-compat builds (glance, uWSGI and this
package)::

    .venv-glance-2026.2/bin/python benchmarks/bench_glance_api.py \\
        [--engine sqlite|postgresql|mysql] [--images N] [--races N]
        [--rounds N]

Server databases are made through the test suite's admin URLs
(``MSP_TEST_POSTGRESQL_URL``, ``MSP_TEST_MYSQL_URL``), named
``msp_gapi_<hex>`` and dropped at the end.
"""

import argparse
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import ADMIN_URLS  # noqa: E402
from tests.conftest import DatabaseServer  # noqa: E402
from tests.glance_compat import deployment as deployment_mod  # noqa: E402

MODES = ('glance', 'filter')
LABELS = {'glance': 'Glance alone', 'filter': 'with the filter'}


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed_gets(deployment, images, rounds):
    """Interleaved GETs; {mode: [seconds]}, one client."""
    apis = deployment.apis()
    times = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for pair in zip(*(images[mode] for mode in MODES)):
            for mode, image_id in zip(MODES, pair):
                started = time.perf_counter()
                answer = apis[mode].show(image_id)
                times[mode].append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(f'{mode}: GET {image_id} answered '
                                       f'{answer.status_code}')
    return times


def measure(deployment, args):
    apis = deployment.apis()
    figures = {mode: {} for mode in MODES}
    wrong = deployment.legacy_per_api(args.images)
    for mode in MODES:
        for image_id in wrong[mode]:
            apis[mode].show(image_id)
        figures[mode]['wrong'] = sum(
            deployment.stores_in_db(i) != ['slow'] for i in wrong[mode])
    raced = deployment.legacy_per_api(args.races)
    for mode in MODES:
        landed, failed = deployment_mod.race_gets_and_patch(
            apis[mode], raced[mode], 3)
        figures[mode]['landed'] = len(landed)
        figures[mode]['lost'] = sum(
            not deployment.has_property(i, 'raced') for i in landed)
        figures[mode]['failed_gets'] = failed
    timed = deployment.legacy_per_api(args.latency_images)
    legacy = timed_gets(deployment, timed, 1)
    resolved = timed_gets(deployment, timed, args.rounds)
    for mode in MODES:
        for name, samples in (('legacy', legacy[mode]),
                              ('resolved', resolved[mode])):
            figures[mode][f'{name}_p50'] = statistics.median(samples) * 1000
            figures[mode][f'{name}_p99'] = percentile(samples, 0.99) * 1000
    return figures


def report(figures, args):
    rows = [
        (f'wrong stores (of {args.images})', 'wrong', 'd'),
        (f'PATCHes lost (of those 200 among {args.races} raced)', 'lost',
         'd'),
        ('  raced PATCHes answered 200', 'landed', 'd'),
        ('  raced GETs that failed', 'failed_gets', 'd'),
        ('GET legacy image p50 ms', 'legacy_p50', '.1f'),
        ('GET legacy image p99 ms', 'legacy_p99', '.1f'),
        ('GET resolved image p50 ms', 'resolved_p50', '.1f'),
        ('GET resolved image p99 ms', 'resolved_p99', '.1f'),
    ]
    print(f'{"":<52} {LABELS["glance"]:>14} {LABELS["filter"]:>16}')
    for label, key, form in rows:
        print(f'{label:<52} {figures["glance"][key]:>14{form}} '
              f'{figures["filter"][key]:>16{form}}')
    glance, ours = figures['glance'], figures['filter']
    ratio = ours['resolved_p50'] / glance['resolved_p50']
    targets = [
        ('0 wrong stores with the filter', ours['wrong'] == 0,
         f'{ours["wrong"]} (Glance alone {glance["wrong"]})'),
        ('0 lost PATCHes with the filter', ours['lost'] == 0,
         f'{ours["lost"]} (Glance alone {glance["lost"]})'),
        ('resolved p50 within 10% of Glance alone', ratio <= 1.10,
         f'{ratio:.2f}x'),
        ('legacy p50 faster than Glance alone',
         ours['legacy_p50'] < glance['legacy_p50'],
         f'{ours["legacy_p50"]:.1f} ms vs {glance["legacy_p50"]:.1f} ms'),
    ]
    print()
    print('targets:')
    for name, ok, figure in targets:
        print(f'  {"PASS" if ok else "MISS"}  {name:<42} {figure}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--engine', default='sqlite',
                        choices=('sqlite', 'postgresql', 'mysql'))
    parser.add_argument('--images', type=int, default=25,
                        help='legacy images per glance-api for the wrong '
                             'stores (default 25)')
    parser.add_argument('--races', type=int, default=12,
                        help='racing GET+PATCH tries per glance-api '
                             '(default 12)')
    parser.add_argument('--latency-images', type=int, default=100,
                        help='images per glance-api for the latency '
                             '(default 100)')
    parser.add_argument('--rounds', type=int, default=5,
                        help='GETs of each resolved image (default 5)')
    args = parser.parse_args(argv)
    print(f'Python {platform.python_version()}, {os.cpu_count()} CPUs, '
          f'load average {os.getloadavg()[0]:.2f}; {args.engine}; '
          f'glance-api: uWSGI, 2 processes x 4 threads each')
    with tempfile.TemporaryDirectory(prefix='bench-glance-api-') as tmp:
        admin_url = None
        if args.engine in ADMIN_URLS:
            variable, default = ADMIN_URLS[args.engine]
            admin_url = os.environ.get(variable) or default
        server = DatabaseServer(args.engine, admin_url, tmp)
        server.connect()
        try:
            deployment = deployment_mod.Deployment(
                args.engine, server.create(prefix='msp_gapi'),
                pathlib.Path(tmp))
            with deployment.running():
                figures = measure(deployment, args)
        finally:
            server.drop_all()
    print(f'load average at end {os.getloadavg()[0]:.2f}')
    report(figures, args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
