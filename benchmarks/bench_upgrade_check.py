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

"""``upgrade check`` on a million locations, beside ``backfill --dry-run``.

The real console script, in a subprocess, start to exit, on the data of
benchmarks/bench_backfill.py (1,000,000 locations by default: mostly
legacy ``{}``, 2% already set, 2% with other keys, 2% naming a retired
store, a few bad rows and URLs no store owns) in SQLite, PostgreSQL and
MariaDB.  The baseline beside it is the other way to get the same counts
today: ``backfill --dry-run`` on the same database.  The check's own
counts are printed too, against what the seed holds.  It prints figures
and never fails on timing.  Run:

    python benchmarks/bench_upgrade_check.py [--rows N]
        [--engines sqlite,postgresql,mysql]
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_backfill as data  # noqa: E402  (the seed, the servers)

from multistore_prefix.cmd import logs as cmd_logs  # noqa: E402

ROW = '{:<28} {:<10} {:>11} {:>9} {:>12}  {}'


def expected(rows: int) -> dict:
    """What the seed holds: the counts the check must find."""
    kinds = collections.Counter(data.kind(i) for i in range(1, rows + 1))
    return {'without store': kinds['legacy'] + kinds['extra'],
            'retired': kinds['retired'], 'already set': kinds['set'],
            'unresolved': kinds['bad'] + kinds['elsewhere']}


def timed(argv: list[str]) -> tuple[float, str]:
    """(wall seconds, stdout) of the console script, start to exit."""
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if result.returncode not in (0, 1, 2):
        raise SystemExit(f'{" ".join(argv)} failed ({result.returncode}): '
                         f'{result.stderr.strip()}')
    return wall, result.stdout


def bench(engine_name: str, url: str, rows: int, tmp: str) -> None:
    conf = data.write_conf(tmp, engine_name, url)
    script = data.command()
    check_wall, out = timed([*script, '--config-file', conf, 'upgrade',
                             'check', '--json'])
    dry_wall, dry = timed([*script, '--config-file', conf, 'backfill',
                           '--dry-run', '--quiet', '-f', 'json'])
    checks = {c['check']: c for c in json.loads(out)['checks']}
    print(ROW.format('upgrade check', engine_name, f'{rows:,}',
                     f'{check_wall:.2f}', f'{rows / check_wall:,.0f}',
                     f'baseline backfill --dry-run {dry_wall:.2f}s '
                     f'(check / baseline = {check_wall / dry_wall:.2f})'))
    want = expected(rows)
    summary = json.loads(dry)
    print(f'{"":<28} {"":<10} found: ' + '; '.join(
        f'{name}: {c["details"].split(";")[0]}' for name, c in
        checks.items() if name != "The filter in glance-api's pipeline"))
    print(f'{"":<28} {"":<10} seeded: ' + ', '.join(
        f'{name} {count:,}' for name, count in want.items())
        + f'; the dry run: would_update {summary["would_update"]:,}, '
          f'unresolved {summary["unresolved"]:,}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rows', type=int, default=1_000_000,
                        help='locations in each database (default 1000000)')
    parser.add_argument('--engines', default='sqlite,postgresql,mysql',
                        help='comma-separated engines (default: all three)')
    args = parser.parse_args(argv)
    cmd_logs.quiet_library_warnings()
    print(f'{os.cpu_count()} CPUs; load average at start: '
          f'{data.load_average()}; command: {" ".join(data.command())}')
    print(ROW.format('', 'engine', 'locations', 'seconds', 'locations/s',
                     'beside'))
    engines = args.engines.split(',')
    with tempfile.TemporaryDirectory(prefix='msp-bench-check-') as tmp:
        if 'sqlite' in engines:
            path = os.path.join(tmp, 'check.sqlite')
            data.sync(f'sqlite:///{path}')
            data.seed_sqlite(path, args.rows)
            bench('sqlite', f'sqlite:///{path}', args.rows, tmp)
        for engine_name in ('postgresql', 'mysql'):
            if engine_name not in engines:
                continue
            variable, default = data.ADMIN_URLS[engine_name]
            admin_url = os.environ.get(variable) or default
            try:
                server = data.ServerDatabase(engine_name, admin_url)
                with server.admin.connect():
                    pass
            except sa.exc.OperationalError as exc:
                print(f'{"upgrade check":<28} {engine_name:<10} skipped: '
                      f'server unreachable ({str(exc).splitlines()[0]})')
                continue
            with server:
                url = server.url(server.create())
                start = time.perf_counter()
                data.sync(url)
                data.seed_server(url, args.rows)
                print(f'{"":<28} {engine_name:<10} seeded in '
                      f'{time.perf_counter() - start:.0f}s')
                bench(engine_name, url, args.rows, tmp)
    print(f'load average at end: {data.load_average()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
