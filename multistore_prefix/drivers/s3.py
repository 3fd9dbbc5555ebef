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

"""S3 stores: ``s3://<host>/<bucket>/<object>``.

The scheme is the one glance_store writes for ``s3_store_host``:
``s3+https`` for an ``https://`` host, ``s3`` for an ``http://`` or bare
host (it never writes ``s3+http``; all three schemes are aliases, so each
resolves).  Keeping glance_store's scheme keeps its port rules too: an
explicit ``:80`` stays in ``s3://`` locations and so stays in the prefix.

``s3_store_bucket_url_format`` only tells boto how to address the bucket;
locations always carry the bucket as the first path segment.  Legacy
locations embed ``access:secret@``: canonical URLs drop it, so old and new
locations resolve alike.  The access and secret keys are never read here.
"""

from multistore_prefix.drivers import base

# The values glance_store documents for s3_store_bucket_url_format.
BUCKET_URL_FORMATS = ('auto', 'virtual', 'path')


class S3Driver(base.Driver):
    glance_store_entry = 's3'
    # glance_store writes s3+https for an https endpoint, else s3.
    endpoint_schemes = ('s3', 's3+https', 's3')

    def compute_prefixes(self) -> list[base.Prefix]:
        host = self.require(
            's3_store_host',
            'set it to the S3 endpoint, e.g. https://s3.example.com')
        bucket = self.require(
            's3_store_bucket',
            'set it to the bucket that holds the images').strip('/')
        if not bucket or '/' in bucket:
            raise self.error('s3_store_bucket',
                             f'{bucket!r} is not a bucket name',
                             'set it to the bucket name alone')
        url_format = self.option('s3_store_bucket_url_format')
        if url_format not in BUCKET_URL_FORMATS:
            raise self.error('s3_store_bucket_url_format',
                             f'{url_format!r} is not a known format',
                             f'use one of: {", ".join(BUCKET_URL_FORMATS)}')
        scheme, canon = self.endpoint(
            's3_store_host', host,
            'set it to http(s)://<host>[:<port>] with no credentials')
        return [base.Prefix(scheme, canon.authority, f'{canon.path}/{bucket}')]
