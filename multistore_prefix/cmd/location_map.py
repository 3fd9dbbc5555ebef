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

"""``stores`` and ``resolve``: the location map on the command line."""

from cliff import columns
from cliff import lister

from multistore_prefix import cmd
from multistore_prefix import masking

#: Formats whose cells are plain text: a list becomes one string there.
TEXT_FORMATS = ('csv', 'value')


class PrefixesColumn(columns.FormattableColumn):
    """A store's prefixes: one a line in a table, a list in json/yaml."""

    def human_readable(self) -> str:
        return '\n'.join(self._value)


class Stores(cmd.HelpWithExitCodes, lister.Lister):
    """List the configured stores and the location URL prefixes each owns.

    One row per store of [DEFAULT]/enabled_backends, sorted by store id:
    its type (the part after the colon) and the location URL prefixes
    computed from its option group.  A prefix owns the URLs below it on a
    path-component boundary; "*" marks a part that matches anything (an rbd
    store without fsid, the http store, a multi-tenant swift store).  Two
    stores that claim the same prefix are reported as a warning on stderr;
    such URLs stay unresolved.  Credentials are never shown.

    The prefixes column is one prefix a line in a table, a list in json
    and yaml, and one space-separated string in csv and value (a space
    inside a directory name is written %20).
    """

    def take_action(self, parsed_args):
        stores = self.app.location_map.stores
        as_text = parsed_args.formatter in TEXT_FORMATS
        rows = []
        for store_id in sorted(stores):
            entry = stores[store_id]
            prefixes = [masking.mask_url(str(prefix))
                        for prefix in entry.prefixes]
            # In csv and value, one cell split on spaces: a URL holds no
            # space of its own, one in a directory name is written %20.
            cell = (' '.join(prefix.replace(' ', '%20') for prefix in prefixes)
                    if as_text else PrefixesColumn(prefixes))
            rows.append((store_id, entry.store_entry, cell))
        return ('store', 'type', 'prefixes'), rows


class Resolve(cmd.HelpWithExitCodes, lister.Lister):
    """Tell which configured store owns each location URL.

    One row per URL, the arguments first, then --from-file: the URL
    (credentials masked) and the id of the store that owns it, empty when
    no store does (no prefix owns it, its scheme has no store, it is
    malformed, or two stores claim its prefix).  An empty store is an
    answer too: a script can feed millions of URLs through --from-file
    and act on the rows without the exit status getting in the way.
    """

    exit_codes = {
        cmd.EXIT_OK: 'every URL got an answer (an empty store is one)',
        cmd.EXIT_CONFIG: f'{cmd.CONFIG_TEXT} (also when --from-file cannot '
                         f'be read; nothing on stdout)',
        cmd.EXIT_UNRESOLVED: '--strict: at least one URL has no store '
                             '(every row is still printed)',
    }

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            'urls', metavar='URL', nargs='*',
            help='A location URL as Glance stores it.')
        parser.add_argument(
            '--from-file', metavar='FILE',
            help='Read URLs from FILE, one a line ("-" for stdin); blank '
                 'lines and lines starting with # are skipped.')
        parser.add_argument(
            '--explain', action='store_true',
            help='Add a "reason" column: why a URL has no store (its code, '
                 'then what is wrong beyond the URL itself).')
        parser.add_argument(
            '--strict', action='store_true',
            help=f'Exit with status {cmd.EXIT_UNRESOLVED} when at least one '
                 f'URL has no store.')
        return parser

    def take_action(self, parsed_args):
        if not parsed_args.urls and parsed_args.from_file is None:
            raise cmd.CommandError(
                'resolve needs URLs: give them as arguments or with '
                '--from-file FILE ("-" for stdin)')
        stream = self._open(parsed_args.from_file)
        location_map = self.app.location_map
        names = ('url', 'store')
        if parsed_args.explain:
            names += ('reason',)
        return names, self._rows(location_map, parsed_args, stream)

    def _open(self, path):
        """The --from-file stream, opened now so that errors come first."""
        if path is None:
            return None
        if path == '-':
            return self.app.stdin
        try:
            # A stray byte must not stop a run over millions of URLs; it
            # shows as U+FFFD and the URL stays unresolved.
            return open(path, encoding='utf-8', errors='replace')
        except OSError as exc:
            raise cmd.CommandError(
                f'cannot read --from-file {path}: {exc.strerror}') from exc

    def _urls(self, parsed_args, stream):
        yield from parsed_args.urls
        if stream is None:
            return
        try:
            for line in stream:
                url = line.strip()
                if url and not url.startswith('#'):
                    yield url
        except OSError as exc:
            raise cmd.CommandError(
                f'cannot read --from-file {parsed_args.from_file}: '
                f'{exc.strerror}') from exc
        finally:
            if stream is not self.app.stdin:
                stream.close()

    def _rows(self, location_map, parsed_args, stream):
        for url in self._urls(parsed_args, stream):
            store = location_map.resolve(url)
            if store is None and parsed_args.strict:
                self.app.exit_code = cmd.EXIT_UNRESOLVED
            row = (masking.mask_url(url), store or '')
            if parsed_args.explain:
                row += (self._reason(location_map, url, store),)
            yield row

    @staticmethod
    def _reason(location_map, url, store):
        if store is not None:
            return ''
        why = location_map.explain(url)
        detail = _beyond_the_url(why.detail or '', url)
        text = f'{why.reason}: {detail}' if detail else why.reason
        return masking.mask_text(text or '')


def _beyond_the_url(detail: str, url: str) -> str:
    """What a reason's detail says besides the URL of its own row.

    "<url>: path climbs above its root" keeps what follows the URL; a
    detail that is a sentence about the URL ("no store prefix owns <url>")
    says nothing the reason code does not.
    """
    for spelling in (url, masking.mask_url(url)):
        if spelling and detail.startswith(spelling + ': '):
            return detail[len(spelling) + 2:]
        if spelling and spelling in detail:
            return ''
    return detail
