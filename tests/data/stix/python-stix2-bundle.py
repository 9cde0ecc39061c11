"""Writes python-stix2-bundle.json: a bundle made by the OASIS `stix2` Python library, so that
ctix's STIX importer is tested on real third-party output (see src/interop/stix.rs).

Run: python3 -m venv /tmp/stixvenv && /tmp/stixvenv/bin/pip install stix2 &&
     /tmp/stixvenv/bin/python tests/data/stix/python-stix2-bundle.py > tests/data/stix/python-stix2-bundle.json
Ids and times are fixed so that the output does not change between runs.
"""
import stix2

T0 = "2026-02-01T08:00:00.000Z"
org = stix2.Identity(id="identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", created=T0, modified=T0,
                     name="Example CERT", identity_class="organization")


def indicator(n, pattern, **kw):
    return stix2.Indicator(id=f"indicator--00000000-0000-4000-8000-00000000000{n}", created=T0, modified=T0,
                           created_by_ref=org.id, pattern=pattern, pattern_type="stix", valid_from=T0, **kw)


ip = indicator(1, "[ipv4-addr:value = '198.51.100.23']", name="Botnet C2", labels=["botnet", "c2"],
               indicator_types=["malicious-activity"], confidence=70, valid_until="2026-05-01T00:00:00Z",
               object_marking_refs=[stix2.TLP_GREEN],
               kill_chain_phases=[{"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "command-and-control"},
                                  {"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}],
               external_references=[{"source_name": "mitre-attack", "external_id": "T1071.001",
                                     "url": "https://attack.mitre.org/techniques/T1071/001/"}])
dom = indicator(2, "[domain-name:value = 'login-update.example']", description="Phishing domain, credential harvesting",
                object_marking_refs=[stix2.TLP_AMBER])
sha = indicator(3, "[file:hashes.'SHA-256' = 'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855']",
                name="Dropper sample", object_marking_refs=[stix2.TLP_RED])
urls = indicator(4, "[url:value = 'http://198.51.100.23/a.php'] OR [url:value = 'https://login-update.example/x?a=1']",
                 description="Landing pages", object_marking_refs=[stix2.TLP_WHITE])
both = indicator(5, "[ipv4-addr:value = '198.51.100.23' AND network-traffic:dst_port = 443]", name="C2 on 443")
mal = stix2.Malware(id="malware--6b616fc1-1505-48e3-8b2c-0d19337bff38", created=T0, modified=T0, name="ExampleBot",
                    is_family=True)
rel = stix2.Relationship(id="relationship--44298a74-ba52-4f0f-87a3-1824e67d7fad", created=T0, modified=T0,
                         source_ref=ip.id, relationship_type="indicates", target_ref=mal.id)
sig = stix2.Sighting(id="sighting--ee20065d-2555-424f-ad9e-0f8428623c75", created=T0, modified=T0,
                     sighting_of_ref=ip.id, count=3)
vuln = stix2.Vulnerability(id="vulnerability--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", created=T0, modified=T0,
                           name="CVE-2021-44228", object_marking_refs=[stix2.TLP_GREEN],
                           external_references=[{"source_name": "cve", "external_id": "CVE-2021-44228"}])
bundle = stix2.Bundle(org, stix2.TLP_GREEN, ip, dom, sha, urls, both, mal, rel, sig, vuln,
                      id="bundle--5d0092c5-5f74-4287-9642-33f4c354e56d")
print(bundle.serialize(pretty=True))
