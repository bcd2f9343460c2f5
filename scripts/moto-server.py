"""moto_server with DynamoDB's writes serialized.

moto 5.2.5 runs each request in its own thread, and its TransactWriteItems is not atomic under
concurrency: it copies the tables it touches, applies the actions one by one, and on a failed
condition puts the copies back, erasing whatever other requests wrote meanwhile. DynamoDB runs
transactions serializably; so does this emulator once every write (put, update, delete,
transaction) of one backend holds one lock. Reads are not locked. Same arguments as moto_server.
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
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

if __name__ == "__main__":
    main()
