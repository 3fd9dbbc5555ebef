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

"""``backfill --strip-s3-credentials`` on three engines.

Two s3 stores on one endpoint (buckets ``glance`` and ``glance-new``);
legacy rows whose URL carries the keys, as a Glance database of before
2026.2 holds them.  tests/glance_compat/test_glance_s3.py shows the same
rewrite is Glance's own.
"""

import json
import uuid

import sqlalchemy as sa

from tests.functional.test_backfill_cli import _L
from tests.functional.test_backfill_cli import run_backfill
from tests.functional.test_backfill_cli import seed
from tests.functional.test_backfill_cli import summary
from tests.functional.test_backfill_cli import table_rows

KEY, SECRET = 'AKIAS3STRIPKEY', 'sEcR/eT-strip-42'
CONF = """\
[DEFAULT]
enabled_backends = old:s3, new:s3
[old]
s3_store_host = http://s3.example.com
s3_store_access_key = {key}
s3_store_secret_key = {secret}
s3_store_bucket = glance
[new]
s3_store_host = http://s3.example.com
s3_store_access_key = {key}
s3_store_secret_key = {secret}
s3_store_bucket = glance-new
[database]
connection = {url}
"""


def url(bucket, query=''):
    return (f's3://{KEY}:{SECRET}@s3.example.com/{bucket}/{uuid.uuid4()}'
            f'{query}')


def bare(text):
    return text.replace(f'{KEY}:{SECRET}@', '').split('?')[0]


def test_strip_s3_credentials_rewrites_url_and_store_and_is_listed(
        db_url, tmp_path):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    rows = [(url('glance-new'), '{}'),
            (url('glance', '?X-Amz-Signature=abc'), '{"store": "old"}'),
            (url('glance-new'), '{"store": "old", "k": 1}'),
            (f's3://s3.example.com/glance/{uuid.uuid4()}', '{}'),
            (url('elsewhere'), '{}')]
    seeded = seed(engine, rows)
    conf = tmp_path / 'glance-api.conf'
    conf.write_text(CONF.format(key=KEY, secret=SECRET, url=db_url))
    report = tmp_path / 'run.json'
    done = run_backfill(conf, '--strip-s3-credentials', '--fix-wrong-stores',
                        '--report', str(report), '-f', 'json', '--quiet')
    assert done.returncode == 0, done.stderr
    after = table_rows(engine, _L)
    got = [(after[i]['value'], json.loads(after[i]['meta_data']))
           for i in sorted(after)]
    [new, old, wrong, clean, unowned] = [seeded[i]['value']
                                         for i in sorted(seeded)]
    assert got == [(bare(new), {'store': 'new'}),
                   (bare(old), {'store': 'old'}),
                   (bare(wrong), {'store': 'new', 'k': 1}),
                   (clean, {'store': 'old'}),
                   # No store: left with its keys, reported unresolved.
                   (unowned, {})]
    table = summary(done.stdout)
    assert (table['updated'], table['wrong_store']) == (4, 1)
    text = report.read_text()
    for output in (done.stdout, done.stderr, text):
        assert SECRET not in output and KEY not in output
    changed = {c['location_id']: c for c in json.loads(text)['changed']}
    ids = sorted(seeded)
    assert changed[ids[0]]['new_url'] == bare(new)
    assert (changed[ids[2]]['store'], changed[ids[2]]['previous_store']) \
        == ('new', 'old')
    assert 'new_url' not in changed[ids[3]]

    # The keys are kept nowhere: a revert leaves the rewrites, listed.
    undone = run_backfill(conf, '--revert', str(report), '-f', 'json')
    assert undone.returncode == 0, undone.stderr
    table = summary(undone.stdout)
    assert (table['reverted'], table['left: credentials-removed']) == (1, 3)
    after_revert = table_rows(engine, _L)
    assert json.loads(after_revert[ids[3]]['meta_data']) == {}
    assert [after_revert[i] for i in ids[:3]] == [after[i] for i in ids[:3]]
    engine.dispose()


def test_without_the_option_the_keys_stay(db_url, tmp_path):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    seeded = seed(engine, [(url('glance-new'), '{}')])
    conf = tmp_path / 'glance-api.conf'
    conf.write_text(CONF.format(key=KEY, secret=SECRET, url=db_url))
    done = run_backfill(conf, '-f', 'json', '--quiet')
    assert done.returncode == 0, done.stderr
    [(location_id, row)] = table_rows(engine, _L).items()
    assert row['value'] == seeded[location_id]['value']
    assert json.loads(row['meta_data']) == {'store': 'new'}
    engine.dispose()
