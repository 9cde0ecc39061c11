#!/usr/bin/env python3
"""Conformance checks of a live ctix node with the standards' own tools.

Run by scripts/interop-check.sh, which starts the node, exports a STIX bundle and a MISP feed,
and passes their paths and the node's credentials.json here. Every check prints one line
starting "ok" or "FAIL"; the exit code is the number of failures (0 when all pass).

  check.py stix BUNDLE.json                  stix2-validator: no errors
  check.py taxii CREDENTIALS.json            taxii2-client: discovery, collections, add, paged
                                             get with added_after, manifest, object by id
  check.py misp FEED_DIR                     PyMISP loads every event file of the feed
  check.py misp-served CREDENTIALS.json      the same for the feed the node serves over HTTP
"""

import json
import os
import sys
import uuid

failures = 0


def ok(msg):
    print(f"ok   {msg}", flush=True)


def fail(msg):
    global failures
    failures += 1
    print(f"FAIL {msg}", flush=True)


def check(cond, msg):
    (ok if cond else fail)(msg)
    return cond


def stix(path):
    from stix2validator import ValidationOptions, validate_file

    results = validate_file(path, ValidationOptions(version="2.1", strict=False))
    errors = []
    warnings = 0
    for obj in results.object_results:
        for e in obj.errors:
            errors.append(f"{obj.object_id}: {e}")
        warnings += len(obj.warnings)
    for e in errors[:20]:
        print(f"     {e}")
    with open(path) as f:
        n = len(json.load(f).get("objects", []))
    check(results.is_valid and not errors, f"stix2-validator: {n} objects in {path}, {len(errors)} errors, {warnings} warnings")
    # The stix2 library parses the whole bundle too.
    import stix2

    with open(path) as f:
        bundle = stix2.parse(f.read(), allow_custom=True)
    check(len(bundle.objects) == n, f"stix2.parse reads the bundle back ({n} objects)")


def taxii(creds_path):
    from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

    with open(creds_path) as f:
        creds = json.load(f)
    user, password, url = creds["taxii_user"], creds["taxii_password"], creds["taxii_url"]
    server = Server(url, user=user, password=password)
    check(len(server.api_roots) == 1, f"discovery at {url}: title {server.title!r}, {len(server.api_roots)} API root")
    root = server.default or server.api_roots[0]
    root = ApiRoot(root.url, user=user, password=password)
    check("application/taxii+json;version=2.1" in root.versions, f"API root {root.url} speaks TAXII 2.1")
    by_alias = {c.alias: c for c in root.collections}
    check({"all", "inbox", "tlp-green", "tlp-amber"} <= set(by_alias), f"collections: {sorted(by_alias)}")
    inbox = Collection(by_alias["inbox"].url, user=user, password=password)
    check(inbox.can_write and not inbox.can_read, "the inbox is write-only")

    # Add: one indicator ctix can take, one object it cannot.
    marker = uuid.uuid4().hex[:12]
    domain = f"taxii-{marker}.example.net"
    envelope = {
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": f"indicator--{uuid.uuid4()}",
                "created": "2026-11-29T08:00:00.000Z",
                "modified": "2026-11-29T08:00:00.000Z",
                "pattern": f"[domain-name:value = '{domain}']",
                "pattern_type": "stix",
                "valid_from": "2026-11-29T08:00:00Z",
                "labels": ["taxii-conformance"],
                "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
            },
            {
                "type": "malware",
                "spec_version": "2.1",
                "id": f"malware--{uuid.uuid4()}",
                "created": "2026-11-29T08:00:00.000Z",
                "modified": "2026-11-29T08:00:00.000Z",
                "name": "conformance-sample",
                "is_family": False,
            },
        ]
    }
    status = inbox.add_objects(envelope, wait_for_completion=True)
    check(
        status.status == "complete" and status.success_count == 1 and status.failure_count == 1,
        f"add_objects: status {status.status}, {status.success_count} success, {status.failure_count} failure",
    )
    again = root.get_status(status.id)
    check(again.id == status.id, f"status {status.id} can be read back")

    # Paged get of `all`, then added_after with the last page's date: exactly what came later.
    coll = Collection(by_alias["all"].url, user=user, password=password)
    seen = []
    last_added = None
    for page in as_pages(coll.get_objects, per_request=7):
        seen.extend(page.get("objects", []))
    keys = [(o["id"], o.get("modified")) for o in seen]
    check(len(keys) == len(set(keys)) and len(keys) > 0, f"paged get (7 per page): {len(keys)} objects, none twice")
    check(any(domain in o.get("pattern", "") for o in seen), "the added indicator is in `all`")
    manifest = coll.get_manifest()
    records = manifest.get("objects", [])
    check(len(records) > 0 and all("date_added" in r and "version" in r for r in records), f"manifest: {len(records)} records")
    if len(records) >= 2:
        last_added = records[len(records) // 2]["date_added"]
        after = coll.get_objects(added_after=last_added)
        got = after.get("objects", [])
        later = [r for r in records if r["date_added"] > last_added]
        check(len(got) == min(len(later), 100), f"added_after {last_added}: {len(got)} objects, {len(later)} added later")
    target = next(o for o in seen if domain in o.get("pattern", ""))
    one = coll.get_object(target["id"])
    check([o["id"] for o in one.get("objects", [])] == [target["id"]], f"object by id {target['id']}")
    versions = coll.object_versions(target["id"])
    check(len(versions.get("versions", [])) >= 1, f"versions of {target['id']}: {versions.get('versions')}")
    # A read-only TLP collection refuses writes.
    green = Collection(by_alias["tlp-green"].url, user=user, password=password)
    check(green.can_read and not green.can_write, "tlp-green is read-only")


def misp_events(events):
    """Loads each event (a path or parsed JSON) with PyMISP, validates it against PyMISP's own JSON
    schema, and checks every attribute's type and category against PyMISP's describeTypes."""
    import pathlib

    import jsonschema
    import pymisp
    from pymisp import MISPEvent

    data = pathlib.Path(pymisp.__file__).parent / "data"
    schema = json.loads((data / "schema.json").read_text())
    describe = json.loads((data / "describeTypes.json").read_text())["result"]
    loaded = 0
    attributes = 0
    for ev in events:
        name = ev if isinstance(ev, str) else "a served event"
        try:
            raw = json.load(open(ev)) if isinstance(ev, str) else ev
            jsonschema.validate(raw, schema)
            e = MISPEvent()
            e.load(raw)
            loaded += 1
            attributes += len(e.attributes) + sum(len(o.attributes) for o in e.objects)
            for a in e.attributes:
                if a.type not in describe["category_type_mappings"].get(a.category, []):
                    fail(f"{name}: attribute type {a.type} is not allowed in category {a.category}")
        except Exception as ex:  # noqa: BLE001 - every failure is reported
            fail(f"PyMISP rejects {name}: {ex}")
    return loaded, attributes


def misp(feed_dir):
    manifest_path = os.path.join(feed_dir, "manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    check(isinstance(manifest, dict) and len(manifest) > 0, f"{manifest_path}: {len(manifest)} events")
    paths = [os.path.join(feed_dir, f"{u}.json") for u in manifest]
    missing = [p for p in paths if not os.path.exists(p)]
    check(not missing, f"every event in the manifest has its file ({len(missing)} missing)")
    loaded, attributes = misp_events([p for p in paths if os.path.exists(p)])
    check(loaded == len(paths), f"PyMISP validates and loads {loaded}/{len(paths)} event files ({attributes} attributes)")
    with open(os.path.join(feed_dir, "hashes.csv")) as f:
        rows = [line for line in f.read().splitlines() if line]
    check(len(rows) == attributes, f"hashes.csv: {len(rows)} rows for {attributes} attributes")


def misp_served(creds_path):
    import urllib.request

    with open(creds_path) as f:
        creds = json.load(f)
    base = creds["api"].rstrip("/") + "/api/v1/misp-feed"

    def get(name):
        req = urllib.request.Request(f"{base}/{name}", headers={"Authorization": f"Bearer {creds['token_rw']}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    manifest = json.loads(get("manifest.json"))
    check(len(manifest) > 0, f"served manifest.json: {len(manifest)} events")
    events = [json.loads(get(f"{u}.json")) for u in manifest]
    loaded, attributes = misp_events(events)
    check(loaded == len(events), f"PyMISP validates and loads {loaded}/{len(events)} served events ({attributes} attributes)")
    rows = [line for line in get("hashes.csv").decode().splitlines() if line]
    check(len(rows) == attributes, f"served hashes.csv: {len(rows)} rows")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("stix", "taxii", "misp", "misp-served"):
        print(__doc__, file=sys.stderr)
        return 2
    {"stix": stix, "taxii": taxii, "misp": misp, "misp-served": misp_served}[sys.argv[1]](sys.argv[2])
    return min(failures, 1)


if __name__ == "__main__":
    sys.exit(main())
