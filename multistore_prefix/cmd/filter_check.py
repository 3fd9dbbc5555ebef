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

"""``multistore-prefix filter check``: will glance-api run the filter?"""

import importlib.util

from cliff import lister
import sqlalchemy as sa

from multistore_prefix import cmd
from multistore_prefix.middleware import options
from multistore_prefix.middleware import pipeline as pipeline_mod


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
            options.register_opts(conf)
        rows = [self._pipeline(conf, parsed_args), self._stores(),
                self._database(conf), self._options(conf), self._glance()]
        if any(row[1] == pipeline_mod.FAIL for row in rows):
            self.app.exit_code = cmd.EXIT_CHECK_FAILED
        return ('check', 'result', 'detail'), rows

    def _pipeline(self, conf, parsed_args):
        return ('pipeline', *pipeline_check(conf, parsed_args.paste_file,
                                            parsed_args.flavor))

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
            options.register_database_opts(conf)
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
                values = {opt.name: conf[options.GROUP][opt.name]
                          for opt in options.FILTER_OPTS}
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
