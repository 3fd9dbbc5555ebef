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

"""``filter check`` and ``upgrade check``: is the deployment ready?

``filter check``: will glance-api run the filter?  ``upgrade check``:
oslo.upgradecheck's table and exit code (0 Success, 1 Warning, 2
Failure), as in ``glance-status upgrade check``; its counts come from one
dry run of the backfill (:class:`Tally`), its pipeline check is
``filter check``'s.
"""

import collections
import contextlib
import functools
import importlib.util
import operator
import shlex
import types
import warnings

from cliff import command
from cliff import lister
from oslo_upgradecheck import upgradecheck
import sqlalchemy as sa

from multistore_prefix import backfill as backfill_mod
from multistore_prefix import cmd
from multistore_prefix.cmd import db as cmd_db
from multistore_prefix import crypt
from multistore_prefix import deciding
from multistore_prefix import location_map as lmap
from multistore_prefix import masking
from multistore_prefix import middleware
from multistore_prefix.middleware import pipeline as pipeline_mod
from multistore_prefix import resolver as resolver_mod

Code = upgradecheck.Code
Result = upgradecheck.Result
#: oslo.upgradecheck's exit code for a check that raised.
EXIT_BROKEN = 255

#: What an operator does about each reason a location has no store.
ACTIONS = {
    lmap.NO_PREFIX: 'add or correct the store that holds them',
    lmap.NO_STORE_IN_URL: 'run backfill without --no-backend-lookups '
                          '(cinder://), or set the store by hand (rbd)',
    lmap.NOT_INSTALLED: 'pip install "multistore-prefix[cinder]"',
    'missing-fsid': 'add the cluster\'s fsid to the store\'s ceph.conf',
    lmap.CONFLICT: 'fix the two stores that claim one prefix',
    lmap.UNKNOWN_SCHEME: 'enable a store of that type',
    lmap.INVALID_URL: 'correct or delete the locations',
    resolver_mod.BAD_METADATA: 'correct the rows\' meta_data',
    resolver_mod.BAD_LOCATION: 'correct the rows\' URL',
    resolver_mod.INVALID_STORE: 'backfill --replace-invalid-stores',
    resolver_mod.BACKEND_KEY: 'glance-manage db migrate, then backfill',
    lmap.RESERVED: 'none: import and task data (Glance\'s reserved '
                   'stores) is no image\'s store',
    deciding.UNDECRYPTABLE: 'set [DEFAULT]/metadata_encryption_key to '
                            'glance-api\'s key',
}
#: oslo.upgradecheck draws its table with a prettytable constant that
#: prettytable 3.12 deprecates: not the operator's concern, even under
#: PYTHONWARNINGS=error.
PRETTYTABLE_WARNING = r"the 'ALL' constant is deprecated"
#: For a reason without an action of its own.
SEE_REPORT = 'see backfill --report'
RESULTS = {pipeline_mod.OK: Code.SUCCESS, pipeline_mod.WARN: Code.WARNING,
           pipeline_mod.FAIL: Code.FAILURE}


#: Locations read per statement: the check writes nothing, so a batch is
#: only as big as memory allows (a few megabytes of short rows).
BATCH_SIZE = 20_000


class Tally(backfill_mod.Backfill):
    """A dry-run backfill that counts what it would do, keeping no rows.

    Every live location is read and decided as the backfill does it, with
    no backend lookups; nothing is written.  The unresolved are counted
    by reason in ``report.unresolved``.

    :ivar without_store: (store type, store) -> locations with no
        ``store`` that the backfill gives that store.
    :ivar retired: retired store name -> locations naming it, that the
        backfill gives a store.
    :ivar wrong_stores: (store named, owning store) -> locations naming
        the wrong enabled store (the ``--fix-wrong-stores`` rule).
    """

    def __init__(self, database, location_map: lmap.LocationMap, cipher):
        super().__init__(database, location_map, batch_size=BATCH_SIZE,
                         dry_run=True, cipher=cipher)
        self.types = {store: entry.store_entry
                      for store, entry in location_map.stores.items()}
        self.without_store = collections.Counter()
        self.retired = collections.Counter()
        self.wrong_stores = collections.Counter()

    def changed(self, row, digests=True, unconfirmed=False):
        if row.previous is None:
            self.without_store[self.types[row.store], row.store] += 1
        else:
            self.retired[row.previous] += 1

    def wrong(self, location_id, image_id, url, named, owner):
        self.wrong_stores[named, owner] += 1

    def unresolved(self, location_id, image_id, url, reason, detail):
        self.report.unresolved[reason] += 1


class UpgradeCheck(cmd.HelpWithExitCodes, command.Command):
    """Tell where the move to several stores stands (oslo.upgradecheck).

    Reads every live location of the database named by
    [database]/connection once (it writes nothing, asks no backend) and
    prints oslo.upgradecheck's table: locations without a store, by store
    type; locations naming a store no longer enabled; locations whose
    store is certainly wrong (the backfill --fix-wrong-stores rule);
    locations that cannot get a store, by reason, with what to do; and
    whether glance-api's pipeline runs the filter (the filter check's
    pipeline row).  Each check gives the command that fixes it.
    """

    common_exit_codes = {}
    exit_codes = {
        Code.SUCCESS: 'every check passed',
        Code.WARNING: 'a check has a warning: the deployment works, '
                      'something is left to do',
        Code.FAILURE: 'a check failed (also: the configuration or the '
                      'command line is wrong, one line on stderr)',
        EXIT_BROKEN: 'a check broke (an unexpected error, one line on '
                     'stderr)',
    }

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--json', action='store_true',
            help='print the results as JSON (oslo.upgradecheck\'s format)')
        parser.add_argument(
            '--paste-file', metavar='PATH',
            help='the paste file to check instead of the one glance-api '
                 'would read (as filter check --paste-file)')
        return parser

    def take_action(self, parsed_args):
        checks = Checks(self.app, parsed_args.paste_file)
        # oslo.upgradecheck reads --json from its own CONF.
        saved = upgradecheck.CONF
        upgradecheck.CONF = types.SimpleNamespace(
            command=types.SimpleNamespace(json=parsed_args.json))
        with contextlib.redirect_stdout(self.app.stdout), \
                warnings.catch_warnings():
            warnings.filterwarnings('ignore', message=PRETTYTABLE_WARNING,
                                    category=DeprecationWarning)
            try:
                return int(checks.check())
            except cmd.CommandError:
                raise
            except Exception as exc:
                # oslo.upgradecheck's code for a check that broke: never
                # mistaken for a Warning or a Failure.
                raise cmd.CommandError(
                    f'a check broke: {masking.mask_error(exc)}',
                    exit_code=EXIT_BROKEN) from exc
            finally:
                upgradecheck.CONF = saved


def _on_counts(field: str, code: Code):
    """A check on one count of the :class:`Tally`.

    None counted is a Success; some, ``code`` with the details the check
    returns; a database that cannot be read, a Failure.

    :param field: the count (a ``Counter``) the check reads, a dotted name.
    """
    def wrap(check):
        @functools.wraps(check)
        def run(self):
            try:
                tally = self.tally
            except cmd.CommandError as exc:
                return Result(Code.FAILURE, str(exc))
            counts = operator.attrgetter(field)(tally)
            if not counts:
                return Result(Code.SUCCESS, f'none of {tally.report.scanned} '
                                            f'live locations')
            return Result(code, check(self, counts))
        return run
    return wrap


class Checks(upgradecheck.UpgradeCommands):
    """The checks, on one read of the database.

    :ivar app: the application (its configuration and location map).
    :ivar paste_file: the paste file to check, or ``None``: glance-api's.
    """

    display_title = 'multistore-prefix upgrade check'

    def __init__(self, app, paste_file: str | None = None):
        self.app = app
        self.paste_file = paste_file
        # Configuration errors are the command's, before any check.
        with cmd.config_errors(app.conf):
            self.location_map = app.location_map
            self.cipher = crypt.from_config(app.conf)
        self.database = cmd_db.open_database(app.conf)
        self._tally = None

    @property
    def tally(self) -> Tally:
        """The counts, read once (CommandError: the database is unread).

        A failed read is not tried again by the next check: each says
        the same error.
        """
        if isinstance(self._tally, cmd.CommandError):
            raise self._tally
        if self._tally is None:
            try:
                self._tally = self._read()
            except cmd.CommandError as exc:
                self._tally = exc
                raise
        return self._tally

    def _read(self) -> Tally:
        tally = Tally(self.database, self.location_map, self.cipher)
        try:
            with cmd.database_errors(
                    f'cannot read the database {self.database.safe_url}'
            ), cmd.config_errors(self.app.conf):
                cmd_db.check_schema(self.database)
                if tally.run().interrupted:
                    raise KeyboardInterrupt
            return tally
        finally:
            tally.close()
            self.database.dispose()

    def command_line(self, *args: str) -> str:
        """The command an operator runs, with their configuration."""
        sources = self.app.options.config_sources
        return shlex.join(['multistore-prefix',
                           *(word for source in sources for word in source),
                           *args])

    # -- the checks ----------------------------------------------------------

    @_on_counts('without_store', Code.WARNING)
    def _without_store(self, counts):
        return (f'{_by_type(counts)}; Glance searches every store for '
                f'them: run {self.command_line("backfill")}')

    @_on_counts('retired', Code.WARNING)
    def _retired(self, counts):
        names = ', '.join(f'{name}: {count}'
                          for name, count in sorted(counts.items()))
        return (f'{sum(counts.values())} name a store that is not enabled '
                f'({names}); run {self.command_line("backfill")}')

    @_on_counts('wrong_stores', Code.FAILURE)
    def _wrong(self, counts):
        pairs = ', '.join(f'{named} instead of {owner}: {count}'
                          for (named, owner), count in sorted(counts.items()))
        fix = self.command_line('backfill', '--fix-wrong-stores')
        return (f'{sum(counts.values())} name an enabled store that does '
                f'not hold them ({pairs}); Glance reads them from the '
                f'wrong store: run {fix}')

    @_on_counts('report.unresolved', Code.WARNING)
    def _unresolved(self, counts):
        reasons = '; '.join(
            f'{reason}: {count} ({ACTIONS.get(reason, SEE_REPORT)})'
            for reason, count in sorted(counts.items()))
        report = self.command_line('backfill', '--dry-run', '--report',
                                   'FILE')
        return (f'{sum(counts.values())} cannot get a store: {reasons}; '
                f'{report} lists them')

    def _filter(self):
        result, detail = pipeline_check(self.app.conf, self.paste_file)
        if result != pipeline_mod.OK:
            detail += (f'; {self.command_line("filter", "check")} checks '
                       f'the rest')
        return Result(RESULTS[result], detail)

    _upgrade_checks = (
        ('Locations without a store', _without_store),
        ('Locations naming a store no longer enabled', _retired),
        ('Locations naming the wrong store', _wrong),
        ('Locations that cannot get a store', _unresolved),
        ('The filter in glance-api\'s pipeline', _filter),
    )


def _by_type(without_store) -> str:
    """"1000 have no store: file 900 (fast 600, slow 300), rbd 100 ..."."""
    by_type = {}
    for (store_type, store), count in sorted(without_store.items()):
        by_type.setdefault(store_type, []).append((store, count))
    parts = [f'{store_type} {sum(c for _, c in stores)} ('
             + ', '.join(f'{store} {count}' for store, count in stores) + ')'
             for store_type, stores in by_type.items()]
    return (f'{sum(without_store.values())} have no store: '
            f'{", ".join(parts)}')


class FilterCheck(cmd.HelpWithExitCodes, lister.Lister):
    """Check that glance-api will run the multistore_prefix filter.

    Reads the deployment's glance-api.conf (--config-file) and the paste
    file glance-api reads ([paste_deploy]/config_file, else
    glance-api-paste.ini beside the configuration files), follows the
    application of [paste_deploy]/flavor to its pipeline as glance-api
    does, and prints one row per check: the pipeline (the filter in it,
    after the context filter, before the cache filters and rootapp), the
    stores (they build from their option groups, more than one), the
    database ([database]/connection is set; it is not contacted), the
    [multistore_prefix] options, and glance beside this package (the
    filter runs in glance-api's own environment).
    """

    common_exit_codes = {}
    exit_codes = {
        cmd.EXIT_OK: 'every check passed (warnings allowed)',
        cmd.EXIT_CHECK_FAILED: 'a check failed (every row is still printed)',
        cmd.EXIT_CONFIG: 'the configuration cannot be read',
    }

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--paste-file', metavar='PATH',
            help='The paste file to check instead of the one glance-api '
                 'would read.')
        parser.add_argument(
            '--flavor', default=None,
            help='The [paste_deploy]/flavor to check instead of the '
                 'configured one ("" for none).')
        return parser

    def take_action(self, parsed_args):
        conf = self.app.conf
        with cmd.config_errors(conf):
            pipeline_mod.register_opts(conf)
            middleware.register_opts(conf)
        rows = [('pipeline', *pipeline_check(conf, parsed_args.paste_file,
                                             parsed_args.flavor)),
                self._stores(),
                self._database(conf), self._options(conf), self._glance()]
        if any(row[1] == pipeline_mod.FAIL for row in rows):
            self.app.exit_code = cmd.EXIT_CHECK_FAILED
        return ('check', 'result', 'detail'), rows

    def _stores(self):
        try:
            stores = self.app.location_map.stores
        except cmd.ConfigurationError as exc:
            return 'stores', pipeline_mod.FAIL, str(exc)
        listed = ', '.join(f'{store} ({entry.store_entry})'
                           for store, entry in sorted(stores.items()))
        if len(stores) < 2:
            return 'stores', pipeline_mod.WARN, (
                f'{listed}: one store; legacy locations need no store name '
                f'until there are several')
        return 'stores', pipeline_mod.OK, listed

    def _database(self, conf):
        with cmd.config_errors(conf):
            middleware.register_database_opts(conf)
            connection = conf.database.connection
        if not connection:
            return 'database', pipeline_mod.FAIL, (
                '[database]/connection is not set: the filter writes '
                'Glance\'s database and stays off without it')
        try:
            url = sa.engine.make_url(connection)
        except sa.exc.ArgumentError:
            return 'database', pipeline_mod.FAIL, (
                '[database]/connection is not a database URL (not shown: '
                'it may hold a password); correct it')
        return 'database', pipeline_mod.OK, (
            f'{url.render_as_string(hide_password=True)} (not contacted)')

    def _options(self, conf):
        try:
            with cmd.config_errors(conf):
                values = {opt.name: conf[middleware.GROUP][opt.name]
                          for opt in middleware.FILTER_OPTS}
        except cmd.ConfigurationError as exc:
            return 'options', pipeline_mod.FAIL, str(exc)
        return 'options', pipeline_mod.OK, ', '.join(
            f'{name} = {value}' for name, value in values.items())

    def _glance(self):
        if importlib.util.find_spec('glance') is None:
            return 'glance', pipeline_mod.WARN, (
                'glance is not importable beside this package: install '
                'multistore-prefix into glance-api\'s own environment')
        return 'glance', pipeline_mod.OK, 'importable beside this package'


def pipeline_check(conf, paste_file: str | None = None,
                   flavor: str | None = None) -> tuple[str, str]:
    """(result, detail): is the filter in glance-api's pipeline?

    :param paste_file: the paste file to read instead of glance-api's.
    :param flavor: the ``[paste_deploy]/flavor`` instead of the
        configured one.
    :raises ConfigurationError: the paste_deploy options do not parse.
    """
    with cmd.config_errors(conf):
        pipeline_mod.register_opts(conf)
        if flavor is None:
            flavor = conf.paste_deploy.flavor
    try:
        path = paste_file or pipeline_mod.paste_file(conf)
        found = pipeline_mod.read(path, flavor)
    except pipeline_mod.PasteError as exc:
        return pipeline_mod.FAIL, str(exc)
    result, detail = found.placement()
    return result, f'{found.path}, application {found.app_name}: {detail}'
