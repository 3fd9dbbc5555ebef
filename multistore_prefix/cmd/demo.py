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

import os

from cliff import show

from multistore_prefix import backfill as backfill_mod
from multistore_prefix import cmd
from multistore_prefix.cmd import progress
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import options as db_options
from multistore_prefix import demo
from multistore_prefix import location_map as lmap


class Demo(cmd.HelpWithExitCodes, show.ShowOne):
    """Backfill a Glance-like deployment made on the spot; needs no config.

    Makes STATE_DIR/demo (STATE_DIR is --state-dir, else $MSP_STATE_DIR,
    else ./state) with a glance-api.conf of local file stores chosen to
    trip Glance's first-match rule (two directories sharing a string
    prefix, a store nested in another, a store with several directories)
    and a SQLite database of legacy images, runs the backfill with its
    progress bar, and prints the summary beside what Glance's rule would
    have done.  Run it again to start afresh; the backfill command runs on
    the same files with --config-file STATE_DIR/demo/glance-api.conf.
    With --setup-only the deployment is made and left for the backfill
    command (dry run, report, run, rerun, revert).
    """

    exit_codes = {
        cmd.EXIT_CONFIG: 'a command-line error, or the state directory '
                         'cannot be made',
        cmd.EXIT_INTERRUPTED: 'interrupted by Ctrl-C or SIGTERM (the '
                              'backfill commits the batch in flight first)',
    }

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--images', type=int, default=10000, metavar='N',
            help='legacy images to create (default 10000)')
        parser.add_argument(
            '--state-dir', metavar='DIR',
            help='where to put demo/ (default $MSP_STATE_DIR or ./state)')
        parser.add_argument(
            '--batch-size', type=int, default=backfill_mod.BATCH_SIZE,
            metavar='N', help='locations per backfill transaction')
        parser.add_argument(
            '--setup-only', action='store_true',
            help='make the deployment and its legacy images, and leave '
                 'them for "multistore-prefix --config-file '
                 'STATE_DIR/demo/glance-api.conf backfill"')
        return parser

    def take_action(self, parsed_args):
        if parsed_args.images < 1 or parsed_args.batch_size < 1:
            raise cmd.CommandError('--images and --batch-size must be at '
                                   'least 1')
        state_dir = os.path.abspath(os.path.join(
            parsed_args.state_dir or db_options.state_dir(), 'demo'))
        try:
            config, seeded = demo.create(state_dir, parsed_args.images)
        except OSError as exc:
            raise cmd.CommandError(f'cannot make {state_dir}: '
                                   f'{exc.strerror}') from None
        rows = [('config', config), ('images', seeded.images),
                ('locations', seeded.locations)]
        glance = [('glance_first_match_wrong',
                   f'{seeded.glance_wrong} of {seeded.legacy} legacy '
                   f'locations')]
        if parsed_args.setup_only:
            self.app.stderr.write(
                f'made {seeded.legacy} legacy locations; next:\n'
                f'  multistore-prefix --config-file {config} backfill '
                f'--dry-run\n')
            rows += [('legacy', seeded.legacy)] + glance
            return tuple(zip(*rows))
        conf = demo.load_config(config)
        database = db_engine.Database.from_config(conf)
        job = backfill_mod.Backfill(
            database, lmap.LocationMap.from_config(conf),
            batch_size=parsed_args.batch_size)
        try:
            report = progress.run_with_progress(self.app, job)
        finally:
            job.close()
            database.dispose()
        if report.interrupted:
            self.app.exit_code = cmd.EXIT_INTERRUPTED
        rows += report.summary() + glance
        return tuple(zip(*rows))
