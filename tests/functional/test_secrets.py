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

"""Secrets in edge cases never reach what the command prints or writes.

Pre-signed URLs' query signatures (S3 v4 and v2, swift tempurl), S3 keys
with white space, and a database password with a raw ``@`` (which
SQLAlchemy splits oddly): none of their pieces may appear in ``resolve``
(every format, --explain, --from-file, -v --debug), ``stores``, the
backfill's report, summary and log lines, or its error lines.  The
command runs in this process; the backfill on SQLite, PostgreSQL and
MariaDB.
"""

import json

import pytest
import sqlalchemy as sa

from tests.functional import test_backfill_cli as cli
from tests.functional import test_cli

SIG = 'c0ffee5ee0a9c1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d'
TEMP_SIG = 'da39a3ee5e6b4b0d3255bfef95601890afd80709'
ACCESS = 'AKIAIOSFODNN7EXAMPLE'
TOKEN = 'IQoJb3JpZ2luX2VjEJrSessionTokenValue'
SPACED_KEY = 'wJalr XUtn/FEMI K7MDENG'
DB_PASSWORD = 'Pa55@w0rd-tail'
S3_SECRET = 's3-Secret-Key-Value'
#: Every secret, and the pieces of them that must not leak either.
SECRETS = (SIG, TEMP_SIG, ACCESS, TOKEN, SPACED_KEY, 'wJalr', 'XUtn',
           'FEMI', 'K7MDENG', DB_PASSWORD, 'Pa55', 'w0rd-tail', S3_SECRET)

CONF = """\
[DEFAULT]
enabled_backends = fast:file, web:http, objects:s3

[fast]
filesystem_store_datadir = /var/lib/glance/images

[objects]
s3_store_host = https://s3.example.com
s3_store_access_key = AKIAOTHEREXAMPLE0000
s3_store_secret_key = {s3_secret}
s3_store_bucket = glance

[database]
connection = {url}
max_retries = 1
retry_interval = 1
"""

PRESIGNED_V4 = (
    f'https://images.example.org/x?X-Amz-Algorithm=AWS4-HMAC-SHA256'
    f'&X-Amz-Credential={ACCESS}%2F20250101%2Fus-east-1%2Fs3%2Faws4_request'
    f'&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600'
    f'&X-Amz-Security-Token={TOKEN}&X-Amz-SignedHeaders=host'
    f'&X-Amz-Signature={SIG}')
PRESIGNED_V2 = (f'https://images.example.org/y?AWSAccessKeyId={ACCESS}'
                f'&Expires=1735689600&Signature={SIG}%3D')
TEMP_URL = (f'https://swift.example.org/v1/AUTH_glance/c/o'
            f'?temp_url_sig={TEMP_SIG}&temp_url_expires=1735689600')
SPACED = f's3+https://{ACCESS}:{SPACED_KEY}@s3.example.com/glance/z'

#: (URL, the store that owns it or the reason it has none).
URLS = [
    (PRESIGNED_V4, 'web'),
    (PRESIGNED_V2, 'web'),
    (TEMP_URL, 'web'),
    (SPACED, 'objects'),
    (f'file:///var/lib/glance/images/a?X-Amz-Signature={SIG}', 'fast'),
    (f'file:///var/lib/glance/other/b?temp_url_sig={TEMP_SIG}',
     'no-matching-prefix'),
    (f's3+https://{ACCESS}:{SPACED_KEY}@bad host/glance/z', 'invalid-url'),
    (f'mysql+pymysql://root:{DB_PASSWORD}@db.example.com/glance',
     'unknown-scheme'),
]


def assert_no_secret(*texts):
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


@pytest.fixture
def conf(tmp_path):
    def write(url=f'sqlite:///{tmp_path}/unused.sqlite'):
        path = tmp_path / 'glance-api.conf'
        path.write_text(CONF.format(url=url, s3_secret=S3_SECRET))
        return path
    return write


@pytest.mark.parametrize('fmt', ['table', 'json', 'yaml', 'csv', 'value'])
def test_resolve_masks_them_in_every_format(conf, fmt):
    result = test_cli.run('-v', '--config-file', conf(), 'resolve',
                          '--explain', '-f', fmt, *[u for u, _ in URLS])

    assert result.returncode == 0, result.stderr
    assert_no_secret(result.stdout, result.stderr)
    assert 'X-Amz-Signature=***' in result.stdout
    assert 'temp_url_sig=***' in result.stdout
    assert 's3+https://***@s3.example.com/glance/z' in result.stdout


def test_resolve_answers_them_right(conf, tmp_path):
    listing = tmp_path / 'urls.txt'
    listing.write_text('\n'.join(u for u, _ in URLS) + '\n')

    rows, result = test_cli.resolve_json(
        conf(), extra=['--debug', '-v', '--explain', '--from-file', listing])

    assert_no_secret(result.stdout, result.stderr)
    assert [row['store'] or row['reason'].partition(':')[0]
            for row in rows] == [want for _, want in URLS]


def test_stores_masks_them(conf):
    for fmt in ('table', 'json', 'yaml', 'csv', 'value'):
        result = test_cli.run('--config-file', conf(), 'stores', '-f', fmt)
        assert result.returncode == 0, result.stderr
        assert_no_secret(result.stdout, result.stderr)


def test_backfill_report_summary_and_log(conf, db_url, tmp_path):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    locations = [(url, '{}') for url, _ in URLS]
    # A bad row, whose URL is reported with its reason.
    locations.append((f'https://images.example.org/w?Signature={SIG}',
                      'not json'))
    try:
        cli.seed(engine, locations)
        for args in (['--dry-run'], []):
            report = tmp_path / 'report.json'
            log = tmp_path / 'backfill.log'

            result = cli.run_backfill(
                conf(db_url), '-v', '--log-file', log, '--report', report,
                *args)

            assert result.returncode == 0, result.stderr
            written = report.read_text()
            assert_no_secret(result.stdout, result.stderr, written,
                             log.read_text())
            entries = json.loads(written)
            changes = entries['would_change' if args else 'changed']
            assert len(changes) == 5
            assert 'X-Amz-Signature=***' in written
            assert len(entries['unresolved_locations']) == 4
        stores = [json.loads(row['meta_data']).get('store')
                  for row in cli.table_rows(engine, cli._L).values()
                  if row['meta_data'] != 'not json']
    finally:
        engine.dispose()
    assert stores == [want if want in ('web', 'objects', 'fast') else None
                      for _, want in URLS]


@pytest.mark.parametrize('driver', ['mysql+pymysql', 'postgresql+psycopg2'])
def test_database_password_with_a_raw_at_never_leaks(conf, driver):
    # SQLAlchemy takes "w0rd-tail@127.0.0.1" for the host: refused before
    # any connection, naming the option and the fix, never the value.
    url = f'{driver}://root:{DB_PASSWORD}@127.0.0.1:9/glance'

    result = cli.run_backfill(conf(url), '--quiet')

    assert result.returncode == cli.EXIT_CONFIG
    assert "[database]/connection" in result.stderr
    assert "raw '@'" in result.stderr and '%40' in result.stderr
    assert_no_secret(result.stdout, result.stderr)
