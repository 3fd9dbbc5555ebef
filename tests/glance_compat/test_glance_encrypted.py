#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See
#    the License for the specific language governing permissions and
#    limitations under the License.

"""Location URLs Glance stored encrypted (``metadata_encryption_key``).

Glance writes them: its image repository (``glance.db.ImageRepo``, which
encrypts every URL it saves while the key is set) for the encrypted rows,
its DB API (which does not) for the plain ones beside them, in one
database, as a deployment that set the key one day holds them.  Then
``backfill`` runs with the same configuration, and Glance's repository
reads every image back.  The Glance side runs in subprocesses of this
file, as in test_glance_database.py.
"""

import json
import os
import sys
import uuid

import pytest
import sqlalchemy as sa

from tests.glance_compat.test_glance_database import _run
from tests.glance_compat.test_glance_database import _tool

try:
    import glance  # noqa: F401
except ImportError as exc:
    if __name__ != '__main__':
        if os.environ.get('MSP_TEST_REQUIRE_GLANCE') == '1':
            pytest.fail(f'{exc} (MSP_TEST_REQUIRE_GLANCE=1)', pytrace=False)
        pytest.skip(str(exc), allow_module_level=True)

KEY = 'k3y-0f-32-bytes-for-aes-256-cbc!'
S3_SECRET = 'sEcR/eT-enc-7'
CONF = """\
[DEFAULT]
enabled_backends = fast:file, slow:file, s3:s3
metadata_encryption_key = {key}
[glance_store]
default_backend = fast
[fast]
filesystem_store_datadir = /var/lib/glance/images
[slow]
filesystem_store_datadir = /var/lib/glance/images2
[s3]
s3_store_host = http://s3.example.com
s3_store_access_key = AKIAENCKEY
s3_store_secret_key = {s3_secret}
s3_store_bucket = glance
[database]
connection = {url}
"""
#: (URL, written encrypted)
LOCATIONS = [
    ('file:///var/lib/glance/images2/{}', True),
    ('file:///var/lib/glance/images/{}', True),
    ('file:///var/lib/glance/images2/{}', False),
    (f's3://AKIAENCKEY:{S3_SECRET}@s3.example.com/glance/{{}}', True),
]
LOCATIONS_TABLE = sa.table('image_locations', sa.column('id'),
                           sa.column('image_id'), sa.column('value'),
                           sa.column('meta_data'))


@pytest.fixture
def glance_db(database_server, tmp_path):
    url = database_server.create(prefix='msp_genc')
    conf = tmp_path / 'glance-api.conf'
    conf.write_text(CONF.format(key=KEY, s3_secret=S3_SECRET, url=url))
    _run([_tool('glance-manage'), '--config-file', conf, 'db', 'sync'])
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield conf, engine
    engine.dispose()


def glance_side(command, conf, payload, tmp_path):
    request = tmp_path / f'{command}-{uuid.uuid4().hex[:6]}.json'
    answer = request.with_suffix('.out.json')
    request.write_text(json.dumps(payload))
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    _run([sys.executable, __file__, command, conf, request, answer],
         env={**os.environ, 'PYTHONPATH': root})
    return json.loads(answer.read_text())


def rows(engine):
    with engine.connect() as conn:
        return {row.id: row for row in conn.execute(
            sa.select(LOCATIONS_TABLE).order_by(LOCATIONS_TABLE.c.id))}


def backfill(conf, *args):
    return _run([_tool('multistore-prefix'), '--config-file', conf,
                 'backfill', '-f', 'json', '--quiet', *args], check=False)


def test_encrypted_and_plain_urls_get_their_store(glance_db, tmp_path):
    conf, engine = glance_db
    images = glance_side('populate', conf, [
        [url, encrypted] for url, encrypted in LOCATIONS], tmp_path)
    before = rows(engine)
    encrypted = [r.value for r in before.values() if '://' not in r.value]
    assert len(encrypted) == 3  # Glance's repository did encrypt them

    done = backfill(conf, '--strip-s3-credentials')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)['updated'] == 4
    for output in (done.stdout, done.stderr):
        assert KEY not in output and S3_SECRET not in output
    after = rows(engine)
    # Only the store was written, the ciphertext kept, but for the URL
    # rewritten (the S3 keys out): that one is written back encrypted.
    kept = [after[i].value == before[i].value for i in sorted(before)]
    assert kept == [True, True, True, False]
    assert '://' not in after[max(after)].value
    read = glance_side('read', conf, images, tmp_path)
    assert [(loc['url'].split('/')[2], loc['metadata'])
            for image_id in images for loc in read[image_id]] == [
        ('', {'store': 'slow'}), ('', {'store': 'fast'}),
        ('', {'store': 'slow'}), ('s3.example.com', {'store': 's3'})]


def test_a_key_that_decrypts_nothing_is_a_configuration_error(
        glance_db, tmp_path):
    conf, engine = glance_db
    glance_side('populate', conf, [LOCATIONS[0]], tmp_path)
    before = rows(engine)
    wrong = 'an-other-key-of-32-bytes-for-aes'
    conf.write_text(conf.read_text().replace(KEY, wrong))
    done = backfill(conf)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert '[DEFAULT]/metadata_encryption_key' in done.stderr
    assert wrong not in done.stderr + done.stdout
    assert rows(engine) == before


def _glance_main(argv) -> int:
    """``populate|read CONF REQUEST ANSWER``: Glance's repository at work.

    populate: one image per (URL, encrypted) pair, written by Glance's
    ImageRepo (which encrypts with the key) or, for a plain one, by its
    DB API with no key.
    """
    command, conf, request, answer = argv
    from glance import context as glance_context
    import glance.db
    from glance.db.sqlalchemy import api as glance_db_api
    from glance import domain
    from oslo_config import cfg

    cfg.CONF(['--config-file', conf], project='glance',
             default_config_files=[])
    context = glance_context.RequestContext(is_admin=True)
    repo = glance.db.ImageRepo(context, glance.db.get_api())
    with open(request, encoding='utf-8') as stream:
        payload = json.load(stream)
    result = []
    if command == 'populate':
        for url, encrypted in payload:
            image = domain.ImageFactory().new_image(
                name='enc', disk_format='raw', container_format='bare')
            url = url.format(image.image_id)
            if encrypted:
                image.locations = [{'url': url, 'metadata': {},
                                    'status': 'active'}]
                repo.add(image)
            else:
                repo.add(image)
                glance_db_api.image_location_add(
                    context, image.image_id,
                    {'url': url, 'metadata': {}, 'status': 'active'})
            result.append(image.image_id)
    else:
        # Glance's repository decrypts every URL, the plain ones too (and
        # fails on those): its DB API reads, its crypt decrypts.
        from glance.common import crypt
        result = {image_id: [
            {'url': (loc['url'] if '://' in loc['url'] else
                     crypt.urlsafe_decrypt(KEY, loc['url'])),
             'metadata': loc['metadata']}
            for loc in glance_db_api.image_get(context, image_id)[
                'locations']] for image_id in payload}
    with open(answer, 'w', encoding='utf-8') as stream:
        json.dump(result, stream)
    return 0


if __name__ == '__main__':
    sys.exit(_glance_main(sys.argv[1:]))
