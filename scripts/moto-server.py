"""moto_server with DynamoDB's writes serialized, and S3's ListParts answered as S3 answers it.

moto 5.2.5 runs each request in its own thread, and its TransactWriteItems is not atomic under
concurrency: it copies the tables it touches, applies the actions one by one, and on a failed
condition puts the copies back, erasing whatever other requests wrote meanwhile. DynamoDB runs
transactions serializably; so does this emulator once every write (put, update, delete,
transaction) of one backend holds one lock. Reads are not locked. Same arguments as moto_server.

moto 5.2.5 differs from S3 in two answers the tests read, which are made as S3 makes them:
- it names the root element of its ListParts answer `ListPartsResponse`; S3 names it
  `ListPartsResult`, and the AWS SDK for Rust refuses any other root;
- its answer to a browser form's POST of an object has no `ETag` and no `Location`, nor the
  bucket's CORS headers (`Access-Control-Expose-Headers`), which S3 sends; Uppy reads the ETag;
- a CompleteMultipartUpload of an upload that no longer exists (completed already: a retry whose
  first answer was lost) fails with a KeyError, an HTML 500; S3 answers `NoSuchUpload`;
- it ignores `x-amz-copy-source-if-match` on CopyObject and UploadPartCopy; S3 refuses the copy
  (412 `PreconditionFailed`) when the source's ETag differs, which the process function relies on
  to never serve a file replaced after it was checked.
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from urllib.parse import unquote, urlparse

from moto.s3.exceptions import MissingKey, NoSuchUpload, PreconditionFailed
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response
from moto.server import main

_LOCK = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name)))

def _list_parts_result(method):
    @functools.wraps(method)
    def renamed(*args, **kwargs):
        status, headers, body = method(*args, **kwargs)
        if isinstance(body, str):
            body = body.replace("ListPartsResponse", "ListPartsResult", 2)
        elif isinstance(body, bytes):
            body = body.replace(b"ListPartsResponse", b"ListPartsResult", 2)
        return status, headers, body

    return renamed


S3Response.list_parts = _list_parts_result(S3Response.list_parts)


def _post_object_headers(method):
    @functools.wraps(method)
    def with_headers(self, request, bucket_name):
        status, headers, body = method(self, request, bucket_name)
        key_name = (getattr(self, "querystring", None) or {}).get("key", [None])[0]
        if self.is_delete_keys() or not key_name or int(status) >= 300:
            return status, headers, body
        stored = self.backend.get_object(bucket_name, key_name)
        if stored is None:
            return status, headers, body
        headers = dict(headers)
        headers["ETag"] = stored.etag
        headers.setdefault("Location", f"{request.host_url}{bucket_name}/{key_name}")
        headers.update(self._get_cors_headers_other())
        return status, headers, body

    return with_headers


S3Response._bucket_response_post = _post_object_headers(S3Response._bucket_response_post)


def _no_such_upload(method):
    @functools.wraps(method)
    def complete(self, bucket_name, multipart_id, body):
        if multipart_id not in self.get_bucket(bucket_name).multiparts:
            raise NoSuchUpload(upload_id=multipart_id)
        return method(self, bucket_name, multipart_id, body)

    return complete


S3Backend.complete_multipart_upload = _no_such_upload(S3Backend.complete_multipart_upload)

def _copy_source_if_match(method):
    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        wanted = self.headers.get("x-amz-copy-source-if-match")
        source = self.headers.get("x-amz-copy-source")
        if wanted and source:
            if isinstance(source, bytes):
                source = source.decode("utf-8")
            bucket, key = unquote(urlparse(source).path).lstrip("/").split("/", 1)
            stored = self.backend.get_object(bucket, key)
            if stored is None:
                raise MissingKey(key=key)
            if wanted.strip('"') != stored.etag.strip('"'):
                raise PreconditionFailed("x-amz-copy-source-If-Match")
        return method(self, *args, **kwargs)

    return checked


S3Response.copy_object = _copy_source_if_match(S3Response.copy_object)
S3Response.upload_part_copy = _copy_source_if_match(S3Response.upload_part_copy)

if __name__ == "__main__":
    main()
