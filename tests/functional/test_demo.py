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

"""``multistore-prefix demo``: the main job on the embedded default."""

import json
import os

import sqlalchemy as sa

from multistore_prefix import demo
from tests.functional import command


def cli(*args, cwd=None):
    return command.run(*args, cwd=cwd or os.getcwd(),
                       env={'MSP_STATE_DIR': ''})


def expected_store(state_dir, url):
    """The store a demo URL belongs to, from its directory."""
    path = url[len('file://'):]
    owners = [(len(directory), store)
              for store, directory in demo._directories(state_dir)
              if path.startswith(directory + '/')]
    return max(owners)[1] if owners else None


def test_demo_backfills_and_beats_glance(tmp_path):
    result = cli('demo', '--images', '600', '--state-dir', str(tmp_path),
                 '-f', 'json')
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    state_dir = str(tmp_path / 'demo')
    assert summary['config'] == os.path.join(state_dir, 'glance-api.conf')
    assert summary['images'] == 600
    assert summary['errors'] == 0
    wrong, _, rest = summary['glance_first_match_wrong'].partition(' of ')
    legacy = int(rest.split()[0])
    assert summary['updated'] == legacy
    # Glance's rule gets most of these wrong: shared string prefix,
    # nested store, the second directory of a multi-directory store.
    assert int(wrong) > legacy // 2
    assert summary['unresolved'] > 0
    assert (summary['scanned'] == summary['updated']
            + summary['already_set'] + summary['unresolved'])

    engine = sa.create_engine(f'sqlite:///{state_dir}/demo.sqlite')
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            'SELECT value, meta_data FROM image_locations').all()
    engine.dispose()
    checked = 0
    for url, text in rows:
        try:
            metadata = json.loads(text)
        except ValueError:
            continue  # the demo's bad rows stay as they were
        want = expected_store(state_dir, url)
        if want is None or '..' in url:
            assert 'store' not in metadata or metadata['store'] != want
            continue
        assert metadata['store'] == want, url
        checked += 1
    assert checked >= legacy


def test_backfill_on_the_demo_config_has_nothing_left(tmp_path):
    assert cli('demo', '--images', '200', '--state-dir',
               str(tmp_path)).returncode == 0
    config = tmp_path / 'demo' / 'glance-api.conf'
    result = cli('--config-file', str(config), 'backfill', '-f', 'json')
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary['updated'] == 0 and summary['already_set'] > 0


def test_demo_needs_no_configuration_and_defaults_to_state(tmp_path):
    result = cli('demo', '--images', '50', '-f', 'value', '-c', 'config',
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        tmp_path / 'state' / 'demo' / 'glance-api.conf')


def test_demo_rejects_bad_numbers(tmp_path):
    result = cli('demo', '--images', '0', '--state-dir', str(tmp_path))
    assert result.returncode == 2
    assert '--images' in result.stderr


def test_setup_only_leaves_the_whole_job_to_walk_through(tmp_path):
    # The README's walk: dry run, run with a report, rerun, revert.
    made = cli('demo', '--images', '150', '--state-dir', str(tmp_path),
               '--setup-only', '-f', 'json')
    assert made.returncode == 0, made.stderr
    legacy = json.loads(made.stdout)['legacy']
    config = str(tmp_path / 'demo' / 'glance-api.conf')
    assert f'--config-file {config} backfill --dry-run' in made.stderr
    database = f'sqlite:///{tmp_path}/demo/demo.sqlite'

    def texts():
        engine = sa.create_engine(database)
        with engine.connect() as conn:
            found = dict(conn.exec_driver_sql(
                'SELECT id, meta_data FROM image_locations').all())
        engine.dispose()
        return found

    def backfill(*args):
        result = cli('--config-file', config, 'backfill', '-f', 'json',
                     *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    before = texts()
    assert backfill('--dry-run')['would_update'] == legacy
    assert texts() == before
    report = tmp_path / 'run.json'
    assert backfill('--report', str(report))['updated'] == legacy
    assert backfill()['updated'] == 0
    assert backfill('--revert', str(report))['reverted'] == legacy
    assert texts() == before
