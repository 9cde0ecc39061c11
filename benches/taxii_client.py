"""TAXII add/read throughput with taxii2-client, the same code for every server.

    taxii_client.py ADD_URL READ_URL USER PASSWORD N [ENVELOPE] [PAGE]

Adds N STIX 2.1 indicators to the collection at ADD_URL in envelopes of ENVELOPE objects
(default 1,000), then pages every object back from READ_URL with PAGE per request (default
1,000), and prints one JSON line: {"add": objects/s, "read": objects/s, "read_objects": count}.
Used by benches/medallion.sh against ctix and against medallion.
"""

import json
import sys
import time
import uuid

from taxii2client.v21 import Collection, as_pages

TLP_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"


def indicator(i, run):
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-29T08:00:00.000Z",
        "modified": "2026-11-29T08:00:00.000Z",
        "pattern": f"[domain-name:value = 'm{i}-{run}.example.net']",
        "pattern_type": "stix",
        "valid_from": "2026-11-29T08:00:00Z",
        "object_marking_refs": [TLP_GREEN],
    }


def main():
    if len(sys.argv) not in (6, 7, 8):
        sys.exit(__doc__)
    add_url, read_url, user, password, n = sys.argv[1:6]
    n = int(n)
    envelope = int(sys.argv[6]) if len(sys.argv) > 6 else 1000
    page = int(sys.argv[7]) if len(sys.argv) > 7 else 1000
    run = uuid.uuid4().hex[:8]
    envelopes = [
        {"objects": [indicator(i, run) for i in range(s, min(s + envelope, n))]} for s in range(0, n, envelope)
    ]
    inbox = Collection(add_url, user=user, password=password)
    start = time.perf_counter()
    for env in envelopes:
        status = inbox.add_objects(env, wait_for_completion=True)
        if status.failure_count:
            sys.exit(f"add_objects: {status.failure_count} failures: {status.failures[:3]}")
    add = n / (time.perf_counter() - start)
    coll = Collection(read_url, user=user, password=password)
    start = time.perf_counter()
    got = 0
    for p in as_pages(coll.get_objects, per_request=page):
        got += len(p.get("objects", []))
    read = got / (time.perf_counter() - start)
    if got < n:
        sys.exit(f"read back {got} objects, expected at least {n}")
    print(json.dumps({"add": add, "read": read, "read_objects": got}))


if __name__ == "__main__":
    main()
