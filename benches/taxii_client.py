"""TAXII add/read throughput with taxii2-client, the same code for every server.

    taxii_client.py ADD_URL READ_URL USER PASSWORD N [ENVELOPE [PAGE [READ_BUDGET_S]]]

Adds N STIX 2.1 indicators to the collection at ADD_URL in envelopes of ENVELOPE objects
(default 1,000), each add waiting for its status, then pages the objects back from READ_URL with
PAGE per request (default 1,000) until the server says there are no more or READ_BUDGET_S seconds
(default 60) of reading are spent: a request still running when the budget ends is abandoned.

Prints one JSON line:
    {"add": objects/s, "added": N, "add_s": seconds of the adds,
     "add_client_cpu_s": this client's CPU seconds in them (serialising, HTTP, parsing statuses),
     "read": objects/s over the pages read, "read_objects": objects read, "read_s": seconds of them,
     "budget_s": READ_BUDGET_S, "budget_hit": whether the budget cut the read short}
"read" is 0 when not even the first page arrived within the budget.

Exits non-zero when an add reports failures, or when the server ends the paging (no `more`)
having returned fewer than N objects. Used by benches/medallion.sh against ctix and medallion.
"""

import json
import signal
import sys
import time
import uuid

from taxii2client.v21 import Collection, as_pages

TLP_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"


class BudgetSpent(Exception):
    """Raised by the interval timer when the read budget ends (even inside a blocking request)."""


def on_alarm(_signum, _frame):
    raise BudgetSpent()


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


def read_pages(coll, page, budget_s):
    """Pages through `coll`; returns (objects read, seconds until the last page read, budget hit)."""
    got = 0
    last_page_s = 0.0
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, budget_s)
    try:
        for p in as_pages(coll.get_objects, per_request=page):
            got += len(p.get("objects", []))
            last_page_s = time.perf_counter() - start
    except BudgetSpent:
        return got, last_page_s, True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return got, last_page_s, False


def main():
    if len(sys.argv) not in range(6, 10):
        sys.exit(__doc__)
    add_url, read_url, user, password, n = sys.argv[1:6]
    n = int(n)
    envelope = int(sys.argv[6]) if len(sys.argv) > 6 else 1000
    page = int(sys.argv[7]) if len(sys.argv) > 7 else 1000
    budget_s = float(sys.argv[8]) if len(sys.argv) > 8 else 60.0
    if n < 1 or envelope < 1 or page < 1 or budget_s <= 0:
        sys.exit(f"N, ENVELOPE, PAGE and READ_BUDGET_S must be positive\n{__doc__}")
    run = uuid.uuid4().hex[:8]
    envelopes = [
        {"objects": [indicator(i, run) for i in range(s, min(s + envelope, n))]} for s in range(0, n, envelope)
    ]
    inbox = Collection(add_url, user=user, password=password)
    start, cpu_start = time.perf_counter(), time.process_time()
    for env in envelopes:
        status = inbox.add_objects(env, wait_for_completion=True)
        if status.failure_count or status.success_count != len(env["objects"]):
            sys.exit(
                f"add_objects: {status.success_count} of {len(env['objects'])} added, "
                f"{status.failure_count} failures: {(status.failures or [])[:3]}"
            )
    add_s = time.perf_counter() - start
    add_cpu_s = time.process_time() - cpu_start
    add = n / add_s
    coll = Collection(read_url, user=user, password=password)
    got, read_s, budget_hit = read_pages(coll, page, budget_s)
    if not budget_hit and got < n:
        sys.exit(f"read back {got} objects and the server said there were no more: expected at least {n}")
    read = got / read_s if got and read_s > 0 else 0.0
    print(
        json.dumps(
            {
                "add": add,
                "added": n,
                "add_s": add_s,
                "add_client_cpu_s": add_cpu_s,
                "read": read,
                "read_objects": got,
                "read_s": read_s,
                "budget_s": budget_s,
                "budget_hit": budget_hit,
            }
        )
    )


if __name__ == "__main__":
    main()
