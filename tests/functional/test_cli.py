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

"""The multistore-prefix command line, run as an operator runs it.

Every test runs the command against real configuration files and checks
stdout, stderr and the exit status: in this process
(:func:`tests.functional.command.run`), or, where the process itself is
what is tested (the console script, ``python -m``, import-time warnings),
the installed console script in a subprocess.
"""

import csv
import io
import json
import textwrap

import pytest
import yaml

from tests.functional.command import run
from tests.functional.command import run_process

SHIPPED_CONF = 'etc/glance-api.conf'

EXIT_CONFIG = 2
EXIT_UNRESOLVED = 3

FSID = '7c4e4f1a-3d2b-4c8e-9f0a-5b6d7e8f9a0b'

# Secrets of the test configurations; none may ever reach the output.
S3_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRETKEY'
SWIFT_KEY = 'sw1ft-K3y-SECRET-value'
DB_PASSWORD = 'db-Pa55word-SECRET'
CINDER_PASSWORD = 'c1nder-Pa55-SECRET'
VCENTER_PASSWORD = 'vc-Pa55-SECRET'
SECRETS = (S3_SECRET, SWIFT_KEY, DB_PASSWORD, CINDER_PASSWORD,
           VCENTER_PASSWORD)
# The example values of etc/glance-api.conf and etc/glance-swift-store.conf.
SHIPPED_SECRETS = ('EXAMPLE/fake+secret/key/not-real-0000',
                   'EXAMPLE-swift-key-not-a-real-secret',
                   'EXAMPLE-another-fake-swift-key',
                   'EXAMPLE-cinder-password-not-real',
                   'EXAMPLE-vcenter-password-not-real')

FILE_STORES = """\
    [DEFAULT]
    enabled_backends = fast:file, bulk:file, tiered:file

    [fast]
    filesystem_store_datadir = /var/lib/glance/images

    [bulk]
    filesystem_store_datadir = /var/lib/glance/images2

    [tiered]
    filesystem_store_datadirs = /srv/glance/ssd:200
    filesystem_store_datadirs = /srv/glance/hdd

    [database]
    connection = mysql+pymysql://glance:{db_password}@db.example.com/glance
""".format(db_password=DB_PASSWORD)


def write_conf(tmp_path, text, name='glance-api.conf'):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def assert_no_secret(result, secrets=SECRETS):
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr
        # nor any long piece of it
        for piece in secret.replace('+', '/').split('/'):
            if len(piece) >= 6:
                assert piece not in result.stdout + result.stderr


def assert_config_error(result, *fragments):
    """Exit 2, one line on stderr naming each fragment, no traceback."""
    assert result.returncode == EXIT_CONFIG, result
    assert result.stdout == ''
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('ERROR: ')
    for fragment in fragments:
        assert fragment in lines[0]
    assert 'Traceback' not in result.stderr
    return lines[0]


@pytest.fixture
def file_conf(tmp_path):
    return write_conf(tmp_path, FILE_STORES)


def resolve_json(conf, *urls, extra=()):
    result = run('--config-file', conf, 'resolve', *extra, '-f', 'json',
                 *urls)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result


# -- stores ---------------------------------------------------------------

def test_stores_json_lists_each_store_sorted(file_conf):
    # In a process of its own: import-time warnings are once a process.
    result = run_process('--config-file', file_conf, 'stores', '-f', 'json')

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {'store': 'bulk', 'type': 'file',
         'prefixes': ['file:///var/lib/glance/images2']},
        {'store': 'fast', 'type': 'file',
         'prefixes': ['file:///var/lib/glance/images']},
        {'store': 'tiered', 'type': 'file',
         'prefixes': ['file:///srv/glance/ssd', 'file:///srv/glance/hdd']},
    ]
    # No eventlet deprecation, no oslo.config "Deprecated: Option
    # filesystem_store_datadirs" on a normal run.
    assert result.stderr == ''


def test_stores_table_shows_one_prefix_a_line(file_conf):
    result = run('--config-file', file_conf, 'stores')

    assert result.returncode == 0, result.stderr
    cells = [[cell.strip() for cell in line.split('|')[1:-1]]
             for line in result.stdout.splitlines() if line.startswith('|')]
    assert cells == [
        ['store', 'type', 'prefixes'],
        ['bulk', 'file', 'file:///var/lib/glance/images2'],
        ['fast', 'file', 'file:///var/lib/glance/images'],
        ['tiered', 'file', 'file:///srv/glance/ssd'],
        ['', '', 'file:///srv/glance/hdd'],
    ]


def test_stores_yaml_csv_value(file_conf):
    as_yaml = run('--config-file', file_conf, 'stores', '-f', 'yaml')
    as_csv = run('--config-file', file_conf, 'stores', '-f', 'csv')
    as_value = run('--config-file', file_conf, 'stores', '-f', 'value',
                   '-c', 'store', '-c', 'type')

    assert yaml.safe_load(as_yaml.stdout)[2] == {
        'store': 'tiered', 'type': 'file',
        'prefixes': ['file:///srv/glance/ssd', 'file:///srv/glance/hdd']}
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ['store', 'type', 'prefixes']
    # A list is one space-separated cell, never a Python list's repr.
    assert rows[1:] == [
        ['bulk', 'file', 'file:///var/lib/glance/images2'],
        ['fast', 'file', 'file:///var/lib/glance/images'],
        ['tiered', 'file', 'file:///srv/glance/ssd file:///srv/glance/hdd']]
    assert as_value.stdout.splitlines() == [
        'bulk file', 'fast file', 'tiered file']


def test_stores_value_prefixes_split_on_spaces(tmp_path):
    conf = write_conf(tmp_path, """\
        [DEFAULT]
        enabled_backends = a:file
        [a]
        filesystem_store_datadirs = /srv/my images:100
        filesystem_store_datadirs = /srv/other
    """)

    result = run('--config-file', conf, 'stores', '-f', 'value',
                 '-c', 'prefixes')

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['file:///srv/my%20images',
                                     'file:///srv/other']


def test_stores_verbose_shows_library_deprecations(file_conf):
    # oslo.config logs an option's deprecation once a process.
    result = run_process('-v', '--config-file', file_conf, 'stores',
                         '-f', 'value')

    assert result.returncode == 0
    assert 'filesystem_store_datadirs' in result.stderr


def test_stores_warns_about_conflicting_stores(tmp_path):
    conf = write_conf(tmp_path, """\
        [DEFAULT]
        enabled_backends = a:file, b:file, c:file
        [a]
        filesystem_store_datadir = /var/lib/glance/images
        [b]
        filesystem_store_datadir = /var/lib/glance/./images/
        [c]
        filesystem_store_datadir = /var/lib/glance/images2
    """)

    result = run('--config-file', conf, 'stores', '-f', 'json')
    answers, _ = resolve_json(conf, 'file:///var/lib/glance/images/x',
                              'file:///var/lib/glance/images2/x',
                              extra=['--explain'])

    assert result.returncode == 0
    assert [row['store'] for row in json.loads(result.stdout)] == [
        'a', 'b', 'c']
    warnings = [line for line in result.stderr.splitlines()
                if line.startswith('WARNING: ')]
    assert len(warnings) == 1, result.stderr
    assert 'a, b' in warnings[0]
    assert 'file:///var/lib/glance/images' in warnings[0]
    assert answers[0]['store'] == ''
    assert answers[0]['reason'].startswith('conflicting-stores')
    assert answers[1]['store'] == 'c'


# -- resolve --------------------------------------------------------------

def test_resolve_overlapping_directories(file_conf):
    answers, result = resolve_json(
        file_conf,
        'file:///var/lib/glance/images/0001',
        'file:///var/lib/glance/images2/0002',
        'file:///var/lib/glance/images/../images2/0003',
        'FILE://localhost/var/lib/glance//images2/0004',
        'file:///var/lib/glance/images22/0005',
        'file:///srv/glance/hdd/0006',
        'file:///var/lib/glance/images/../../../../etc/passwd',
        'swift://nowhere/c/o')

    assert [(row['url'], row['store']) for row in answers] == [
        ('file:///var/lib/glance/images/0001', 'fast'),
        ('file:///var/lib/glance/images2/0002', 'bulk'),
        ('file:///var/lib/glance/images/../images2/0003', 'bulk'),
        ('FILE://localhost/var/lib/glance//images2/0004', 'bulk'),
        ('file:///var/lib/glance/images22/0005', ''),
        ('file:///srv/glance/hdd/0006', 'tiered'),
        ('file:///var/lib/glance/images/../../../../etc/passwd', ''),
        ('swift://nowhere/c/o', ''),
    ]
    assert result.stderr == ''


def test_resolve_explain_gives_reasons(file_conf):
    answers, _ = resolve_json(
        file_conf, 'file:///var/lib/glance/images/1', 'file:///elsewhere/2',
        'swift://h/c/o', 'not a url', extra=['--explain'])

    assert [row['reason'] for row in answers] == [
        '', 'no-matching-prefix',
        "unknown-scheme: no configured store handles scheme 'swift'",
        'invalid-url: no scheme:// part']
    assert answers[0]['store'] == 'fast'


def test_resolve_explain_never_repeats_the_url(file_conf):
    urls = ['file:///nowhere/x', 'file:///../x',
            's3://AKIAEXAMPLE0:secret0000@s3.example.com/b/o']
    for fmt in ('csv', 'value', 'json', 'table'):
        result = run('--config-file', file_conf, 'resolve', '--explain',
                     '-f', fmt, *urls)
        assert result.returncode == 0, result.stderr
        for line in result.stdout.splitlines():
            for url in ('file:///nowhere/x', 'file:///../x',
                        's3://***@s3.example.com/b/o'):
                assert line.count(url) <= 1, line
    answers, _ = resolve_json(file_conf, *urls, extra=['--explain'])
    assert [row['reason'] for row in answers] == [
        'no-matching-prefix', 'invalid-url: path climbs above its root',
        "unknown-scheme: no configured store handles scheme 's3'"]


def test_resolve_masks_credentials(file_conf):
    urls = [
        f's3+https://AKIAEXAMPLE0:{S3_SECRET}@s3.example.com/glance/img',
        f'swift+https://tenant:user:{SWIFT_KEY}@keystone.example.com/v3/'
        f'glance/img',
        f's3://AKIAEXAMPLE0:{S3_SECRET}@s3.example.com/glance/img',
        f'file://u:{SWIFT_KEY}@/var/lib/glance/images/img',
    ]
    for fmt in ('json', 'table', 'csv', 'value', 'yaml'):
        result = run('--config-file', file_conf, 'resolve', '--explain',
                     '-f', fmt, *urls)
        assert result.returncode == 0, result.stderr
        assert_no_secret(result)
        assert 'AKIAEXAMPLE0' not in result.stdout

    answers, _ = resolve_json(file_conf, *urls)
    assert [row['url'] for row in answers] == [
        's3+https://***@s3.example.com/glance/img',
        'swift+https://***@keystone.example.com/v3/glance/img',
        's3://***@s3.example.com/glance/img',
        'file://***@/var/lib/glance/images/img',
    ]


def test_resolve_from_file(file_conf, tmp_path):
    listing = tmp_path / 'urls.txt'
    listing.write_text(textwrap.dedent("""\
        # exported from image_locations
        file:///var/lib/glance/images2/b

          file:///var/lib/glance/images/a
        # file:///var/lib/glance/images/commented-out
        file:///nowhere/c
    """))

    answers, _ = resolve_json(file_conf, 'file:///srv/glance/ssd/first',
                              extra=['--from-file', listing])

    assert [(row['url'], row['store']) for row in answers] == [
        ('file:///srv/glance/ssd/first', 'tiered'),
        ('file:///var/lib/glance/images2/b', 'bulk'),
        ('file:///var/lib/glance/images/a', 'fast'),
        ('file:///nowhere/c', ''),
    ]


def test_resolve_from_stdin(file_conf):
    result = run('--config-file', file_conf, 'resolve', '--from-file', '-',
                 '-f', 'csv',
                 stdin='file:///var/lib/glance/images2/x\n\n'
                       'file:///var/lib/glance/images/y\n')

    assert result.returncode == 0, result.stderr
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ['url', 'store'],
        ['file:///var/lib/glance/images2/x', 'bulk'],
        ['file:///var/lib/glance/images/y', 'fast'],
    ]


def test_resolve_value_and_yaml(file_conf):
    urls = ['file:///var/lib/glance/images2/x', 'file:///nowhere/y']
    as_value = run('--config-file', file_conf, 'resolve', '-f', 'value',
                   *urls)
    as_yaml = run('--config-file', file_conf, 'resolve', '-f', 'yaml',
                  *urls)

    assert as_value.stdout.splitlines() == [
        'file:///var/lib/glance/images2/x bulk', 'file:///nowhere/y ']
    assert yaml.safe_load(as_yaml.stdout) == [
        {'url': 'file:///var/lib/glance/images2/x', 'store': 'bulk'},
        {'url': 'file:///nowhere/y', 'store': ''},
    ]


def test_resolve_exit_status(file_conf):
    resolved = 'file:///var/lib/glance/images/x'
    unresolved = 'file:///nowhere/y'

    lenient = run('--config-file', file_conf, 'resolve', resolved,
                  unresolved)
    strict = run('--config-file', file_conf, 'resolve', '--strict',
                 '-f', 'value', resolved, unresolved)
    strict_ok = run('--config-file', file_conf, 'resolve', '--strict',
                    resolved)

    assert lenient.returncode == 0
    assert strict.returncode == EXIT_UNRESOLVED
    assert strict.stdout.splitlines() == [f'{resolved} fast',
                                          f'{unresolved} ']
    assert strict_ok.returncode == 0


def test_resolve_needs_urls(file_conf):
    result = run('--config-file', file_conf, 'resolve')

    assert_config_error(result, '--from-file')


def test_resolve_unreadable_from_file(file_conf, tmp_path):
    result = run('--config-file', file_conf, 'resolve', '--from-file',
                 tmp_path / 'missing.txt')

    assert_config_error(result, 'missing.txt')


# -- configuration errors -------------------------------------------------

def test_no_config_file_is_a_clear_error():
    for command in (['stores'], ['resolve', 'file:///x']):
        result = run(*command)
        line = assert_config_error(result, '--config-file')
        assert 'glance-api.conf' in line


def test_missing_config_file(tmp_path):
    result = run('--config-file', tmp_path / 'nope.conf', 'stores')

    assert_config_error(result, str(tmp_path / 'nope.conf'))


def test_unparsable_config_file(tmp_path):
    conf = write_conf(tmp_path, '[DEFAULT\nenabled_backends = a:file\n')

    assert_config_error(run('--config-file', conf, 'stores'), str(conf),
                        'parse')


def test_unknown_store_type(tmp_path):
    conf = write_conf(tmp_path, """\
        [DEFAULT]
        enabled_backends = fast:file, odd:floppy
    """)

    line = assert_config_error(run('--config-file', conf, 'stores'),
                               "'odd'", "'floppy'")
    known = line.partition('use one of: ')[2]
    for store_type in ('file', 'http', 'rbd', 's3', 'swift', 'cinder',
                       'vmware'):
        assert store_type in known


def test_empty_option_names_group_and_option(tmp_path):
    conf = write_conf(tmp_path, """\
        [DEFAULT]
        enabled_backends = fast:file
        [fast]
        filesystem_store_datadir =
    """)

    assert_config_error(run('--config-file', conf, 'resolve', 'file:///x'),
                        '[fast]/filesystem_store_datadir')


def test_relative_datadir_names_group_and_option(tmp_path):
    conf = write_conf(tmp_path, """\
        [DEFAULT]
        enabled_backends = fast:file
        [fast]
        filesystem_store_datadir = images
    """)

    assert_config_error(run('--config-file', conf, 'stores'),
                        '[fast]/filesystem_store_datadir', 'absolute')


def test_missing_required_option_names_group_and_option(tmp_path):
    conf = write_conf(tmp_path, f"""\
        [DEFAULT]
        enabled_backends = objects:s3
        [objects]
        s3_store_access_key = AKIAEXAMPLE0
        s3_store_secret_key = {S3_SECRET}
        s3_store_bucket = glance
    """)

    result = run('--config-file', conf, 'stores')

    assert_config_error(result, '[objects]/s3_store_host')
    assert_no_secret(result)


def test_invalid_value_names_group_and_option(tmp_path):
    conf = write_conf(tmp_path, """\
        [DEFAULT]
        enabled_backends = fast
    """)

    assert_config_error(run('--config-file', conf, 'stores'),
                        '[DEFAULT]/enabled_backends', str(conf))


def test_invalid_value_in_a_store_group(tmp_path):
    conf = write_conf(tmp_path, """\
        [DEFAULT]
        enabled_backends = fast:file, swift:swift
        [swift]
        swift_store_multi_tenant = maybe
    """)

    assert_config_error(run('--config-file', conf, 'stores'),
                        '[swift]/swift_store_multi_tenant', "'maybe'")


def test_no_backends(tmp_path):
    conf = write_conf(tmp_path, '[DEFAULT]\n')

    assert_config_error(run('--config-file', conf, 'stores'),
                        '[DEFAULT]/enabled_backends')


def test_debug_shows_the_traceback(tmp_path):
    conf = write_conf(tmp_path, """\
        [DEFAULT]
        enabled_backends = odd:floppy
    """)

    result = run('--debug', '--config-file', conf, 'stores')

    assert result.returncode == EXIT_CONFIG
    assert 'Traceback' in result.stderr
    assert 'UnknownStoreType' in result.stderr


# -- configuration sources ------------------------------------------------

def test_later_config_sources_win(tmp_path, file_conf):
    override_dir = tmp_path / 'glance-api.conf.d'
    override_dir.mkdir()
    (override_dir / '10-bulk.conf').write_text(
        '[bulk]\nfilesystem_store_datadir = /data/bulk\n')
    last = write_conf(tmp_path, '[bulk]\nfilesystem_store_datadir = '
                      '/data/last\n', name='last.conf')

    with_dir = run('--config-file', file_conf, '--config-dir', override_dir,
                   'stores', '-f', 'json')
    dir_first = run('--config-dir', override_dir, '--config-file', file_conf,
                    '--config-file', last, 'stores', '-f', 'json')

    assert json.loads(with_dir.stdout)[0]['prefixes'] == [
        'file:///data/bulk']
    assert json.loads(dir_first.stdout)[0]['prefixes'] == [
        'file:///data/last']


def test_does_not_read_etc_glance_silently(tmp_path, file_conf):
    # A glance-api.conf in the working directory or in the user's
    # ~/.glance is not picked up: only what the command line names.
    (tmp_path / 'glance-api.conf').write_text(FILE_STORES)

    result = run('stores', cwd=tmp_path)

    assert_config_error(result, '--config-file')


def test_help_needs_no_configuration():
    result = run('help', 'resolve')

    assert result.returncode == 0
    assert 'Exit codes:' in result.stdout
    assert '--from-file' in result.stdout


def test_python_m_runs_the_same_application(file_conf):
    result = run_process('--config-file', file_conf, 'resolve', '-f',
                         'value', 'file:///var/lib/glance/images2/x',
                         module=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout == 'file:///var/lib/glance/images2/x bulk\n'
    version = run_process('--version', module=True)
    assert version.stdout.startswith('multistore-prefix ')


# -- secrets --------------------------------------------------------------

def test_no_secret_is_ever_printed(tmp_path):
    swift_accounts = tmp_path / 'glance-swift-store.conf'
    swift_accounts.write_text(textwrap.dedent(f"""\
        [ref1]
        user = service:glance
        key = {SWIFT_KEY}
        auth_version = 3
        auth_address = https://keystone.example.com:5000/v3
    """))
    conf = write_conf(tmp_path, f"""\
        [DEFAULT]
        enabled_backends = fast:file, objects:s3, swift:swift,
            volumes:cinder, vcenter:vmware
        [fast]
        filesystem_store_datadir = /var/lib/glance/images
        [objects]
        s3_store_host = https://s3.example.com
        s3_store_access_key = AKIAEXAMPLE0
        s3_store_secret_key = {S3_SECRET}
        s3_store_bucket = glance
        [swift]
        swift_store_config_file = {swift_accounts}
        default_swift_reference = ref1
        swift_store_container = glance
        [volumes]
        cinder_store_password = {CINDER_PASSWORD}
        [vcenter]
        vmware_server_host = vcenter.example.com
        vmware_server_username = glance
        vmware_server_password = {VCENTER_PASSWORD}
        vmware_datastores = dc1:ds1:100
        [database]
        connection = mysql+pymysql://glance:{DB_PASSWORD}@db/glance
    """)
    urls = [
        f's3+https://AKIAEXAMPLE0:{S3_SECRET}@s3.example.com/glance/a',
        f'swift+https://service:glance:{SWIFT_KEY}@keystone.example.com:5000'
        f'/v3/glance/b',
        f'mysql+pymysql://glance:{DB_PASSWORD}@db/glance',
    ]

    runs = []
    for fmt in ('table', 'json', 'yaml', 'csv', 'value'):
        runs.append(run('--config-file', conf, 'stores', '-f', fmt))
        runs.append(run('-v', '--config-file', conf, 'resolve', '--explain',
                        '-f', fmt, *urls))
    runs.append(run('--debug', '-v', '--config-file', conf, 'resolve',
                    '--from-file', '-', stdin='\n'.join(urls)))

    for result in runs:
        assert result.returncode == 0, result.stderr
        assert_no_secret(result)
    swift_row = [row for row in json.loads(runs[3].stdout)
                 if row['url'].startswith('swift')]
    assert swift_row == [{
        'url': 'swift+https://***@keystone.example.com:5000/v3/glance/b',
        'store': 'swift', 'reason': ''}]


# -- the shipped example ----------------------------------------------------

def test_shipped_example_stores():
    result = run('--config-file', SHIPPED_CONF, 'stores', '-f', 'json')

    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
    rows = {row['store']: row for row in json.loads(result.stdout)}
    assert {store: row['type'] for store, row in rows.items()} == {
        'bulk': 'file', 'ceph': 'rbd', 'fast': 'file', 'objects': 's3',
        'swift': 'swift', 'tiered': 'file', 'vcenter': 'vmware',
        'volumes': 'cinder', 'web': 'http'}
    assert list(rows) == sorted(rows)
    assert rows['fast']['prefixes'] == ['file:///var/lib/glance/images']
    assert rows['bulk']['prefixes'] == ['file:///var/lib/glance/images2']
    assert len(rows['tiered']['prefixes']) == 3
    # rbd_store_ceph_conf = etc/ceph/ceph.conf, read from the repo root
    assert any(FSID in prefix for prefix in rows['ceph']['prefixes'])
    assert_no_secret(result, SHIPPED_SECRETS)


SHIPPED_EXAMPLES = [
    ('file:///var/lib/glance/images/aaa', 'fast'),
    ('file:///var/lib/glance/images2/bbb', 'bulk'),
    ('file:///srv/glance/archive/ccc', 'tiered'),
    (f'rbd://{FSID}/images/ddd/snap', 'ceph'),
    ('s3+https://s3.example.com/glance/eee', 'objects'),
    ('s3+https://EXAMPLEACCESSKEY0000:EXAMPLE-legacy-secret0000'
     '@s3.example.com/glance/fff', 'objects'),
    ('swift+config://ref1/glance/ggg', 'swift'),
    ('swift+https://service:glance:EXAMPLE-swift-key-not-a-real-secret'
     '@keystone.example.com:5000/v3/glance/hhh', 'swift'),
    ('cinder://volumes/iii', 'volumes'),
    ('vsphere://vcenter.example.com/folder/openstack_glance/jjj'
     '?dcPath=dc1&dsName=datastore2', 'vcenter'),
    ('https://images.example.org/kkk', 'web'),
    ('file:///var/lib/glance/images3/lll', ''),
]


def test_shipped_example_resolve():
    urls = [url for url, _ in SHIPPED_EXAMPLES]

    result = run('--config-file', SHIPPED_CONF, 'resolve', '-f', 'json',
                 *urls)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
    rows = json.loads(result.stdout)
    assert [(url, row['store']) for url, row in zip(urls, rows)] == (
        SHIPPED_EXAMPLES)
    assert rows[5]['url'] == 's3+https://***@s3.example.com/glance/fff'
    assert rows[7]['url'] == ('swift+https://***@keystone.example.com:5000'
                              '/v3/glance/hhh')
    assert_no_secret(result, SHIPPED_SECRETS + ('EXAMPLE-legacy-secret',))
