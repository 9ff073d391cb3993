#!/usr/bin/env python3
"""Writes the seed corpus of the harnesses, tests/fuzz/corpus/NAME/ (tests/fuzz/README.md):
small valid inputs taken from the tests' fixtures, docs/directives.md and
packaging/examples, and a few invalid ones. Run it from anywhere; it rewrites
only the files it names (seed-*), so inputs added by hand (crash-*) stay."""
import json, os, struct, hashlib

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

def write(harness, name, data):
    d = os.path.join(here, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def dumps(v):
    return json.dumps(v, separators=(",", ":"))

def str16(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b

def blob32(b):
    return struct.pack(">I", len(b)) + b

SIG = bytes(64)

# ---- sync_records: the selector byte, then the record (signatures are not checked by the decoders)
def event(seq, payload, type_="site.note", prev=bytes(32)):
    body = (b"IRTE" + b"\x01" + str16("101-N1") + struct.pack(">Q", seq) + prev + struct.pack(">Q", 1000 + seq)
            + struct.pack(">q", 1760000000000) + str16("coordinator.ana") + str16(type_) + struct.pack(">Q", 3)
            + blob32(payload.encode()))
    return body + SIG

def directive(seq, type_, payload):
    body = (b"IRTD" + b"\x01" + str16("101-N1") + struct.pack(">Q", seq) + struct.pack(">Q", 2000 + seq)
            + struct.pack(">q", 1760000000000) + str16(type_) + blob32(payload.encode()))
    return body + SIG

def certificate():
    body = (b"IRTC" + b"\x01" + str16("101-N1") + str16("101") + str16("site") + bytes(range(32))
            + struct.pack(">Q", 1) + struct.pack(">q", 1760000000000) + struct.pack(">q", 1790000000000))
    return body + SIG

note = dumps({"text": "fridge checked", "role": "coordinator", "site_id": "101"})
write("sync_records", "event", b"\x00" + event(1, note))
write("sync_records", "event-second", b"\x00" + event(2, note, prev=hashlib.sha256(b"x").digest()))
write("sync_records", "event-limits-ignored", b"\x01" + event(1, note))
write("sync_records", "event-truncated", b"\x00" + event(1, note)[:-10])
write("sync_records", "event-seq-0", b"\x00" + event(0, note))
write("sync_records", "directive", b"\x02" + directive(1, "grant.numbers", dumps(
    {"range_id": 1, "prefix": "101", "first": 1, "last": 200, "digits": 3})))
write("sync_records", "directive-bad-version", b"\x02" + b"IRTD\x02" + directive(1, "x", "{}")[5:])
write("sync_records", "certificate", b"\x03" + certificate())
write("sync_records", "certificate-trailing", b"\x03" + certificate() + b"\x00")
write("sync_records", "compact-range-3", b"\x04" + struct.pack(">Q", 3) + bytes(32) + bytes(range(32)))
write("sync_records", "compact-range-empty", b"\x04" + struct.pack(">Q", 0))
write("sync_records", "compact-range-short", b"\x04" + struct.pack(">Q", 2))
receipt = {"node_id": "101-N1", "seq": 3, "leaf_index": 2, "tree_size": 4,
           "proof": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="],
           "checkpoint": "irt-hub\n4\nAAAA\n"}
write("sync_records", "receipt", b"\x05" + dumps(receipt).encode())
write("sync_records", "receipt-bad-proof", b"\x05" + dumps(dict(receipt, proof=["AAAA"])).encode())

# ---- sync_batch
def batch(records, version=1):
    return b"IRTB" + bytes([version]) + struct.pack(">I", len(records)) + b"".join(blob32(r) for r in records)
write("sync_batch", "empty", batch([]))
write("sync_batch", "two-events", batch([event(1, note), event(2, note)]))
write("sync_batch", "directive", batch([directive(1, "grant.numbers", "{}")]))
write("sync_batch", "trailing", batch([event(1, note)]) + b"\x00")
write("sync_batch", "truncated", batch([event(1, note)])[:-3])
write("sync_batch", "version-2", batch([], version=2))
write("sync_batch", "count-too-high", b"IRTB\x01" + struct.pack(">I", 2001))

# ---- directive_payloads: the selector byte (the directive type), then the payload
directives = [
    {"study_version": 1, "grants": [{"node": "101-N1", "grant_id": 7, "stratum": 1, "stratum_label": "site=101;diabetes=no",
                                     "slots": [{"slot": 1, "block": 1, "block_size": 4, "arm": "B"},
                                               {"slot": 2, "block": 1, "block_size": 4, "arm": "A"}]}],
     "voids": [{"node": "101-N1", "stratum": 1, "slots": [9, 10]}]},
    {"range_id": 1, "prefix": "101", "first": 1, "last": 200, "digits": 3},
    {"stream_id": 1, "seed": "07" * 32, "allowance": 40, "synced_participants": 120,
     "baseline": [[[3.5, 1.5, 1.0], [2.0, 1.0, 1.5]], [[1.0, 0.5, 0.5], [4.5, 2.0, 2.0]]]},
    {"allowances": [{"scope": "arm", "id": "B", "granted": 3}, {"scope": "cohort", "id": "pk", "granted": 5}]},
    {"shipment_id": "SHP-0001", "kind": "initial", "shipped_on": "2025-03-01",
     "kits": [{"kit_number": "4821907", "kit_type": "VLC25", "lot": "24L101", "expiry": "2026-05-31"}]},
    {"decision_id": 3, "kits": ["4821907", "5133068"], "reason": "excursion within stability data"},
    {"lot": "L02", "expiry": "2028-06-30", "kits": ["4821907", "5133068"], "reason": "stability data extended"},
    {"request_seq": 42, "to_node": "402-N2", "kits": ["4821907", "5133068"], "outcome": "moved", "reason": ""},
    {"shipment_id": "RET-301-N1-57", "depot": "DE-FRA",
     "kits": [{"kit": "4821907", "condition": "received"}, {"kit": "5133068", "condition": "missing"}]},
    {"lease_id": 2, "until_ms": 1768435200000, "reason": "renewed at sync"},
    {"transfer_id": 3, "request_seq": 57, "participant": "101-004", "to_site": "102", "outcome": "approved",
     "to_node": "102-N1", "kits": ["4821907"], "reason": "agreed by both sites", "decided_by": "manager.ines"},
    {"transfer_id": 3, "participant": "101-004", "from_site": "101", "from_node": "101-N1", "status": "randomized",
     "factors": {"diabetes": "yes", "site": "101", "country": "FR"}, "eligibility": ["yes", "yes"], "cohort": "",
     "screened_on": "2026-03-02", "screened_by": "coordinator.ana", "study_version": 1,
     "randomization_number": "R01-0003", "randomized_on": "2026-03-16", "randomized_by": "coordinator.ana",
     "arm": "A", "stratum": 0,
     "visits": [{"visit": "V1", "date": "2026-03-16", "kits": ["4821907"], "deviation": "", "missed_reason": "",
                 "by": "coordinator.ana"}],
     "kits": [{"kit_number": "4821907", "kit_type": "VLC25", "lot": "L01", "expiry": "2027-12-31", "visit": "V1"}],
     "unblinded": False, "unblinded_on": "", "unblinded_by": "", "reason": "moved to Paris"},
]
for i, d in enumerate(directives):
    write("directive_payloads", "type-%02d" % i, bytes([i]) + dumps(d).encode())
# Sealed fields: a "sealed" object is sealed to the node's key by the harness.
write("directive_payloads", "sealed-arm", b"\x00" + dumps({"study_version": 1, "grants": [
    {"node": "101-N1", "grant_id": 7, "stratum": 1, "stratum_label": "s", "slots": [{"slot": 1, "block": 1, "block_size": 4}]}],
    "sealed": {"/grants/0/slots/0/arm": "B"}}).encode())
write("directive_payloads", "sealed-not-base64", b"\x04" + dumps({"shipment_id": "S", "sealed": "@@@"}).encode())
write("directive_payloads", "shipment-bad-expiry", b"\x04" + dumps({"shipment_id": "S1", "kits": [
    {"kit_number": "1", "kit_type": "A", "expiry": "2025-02-30"}]}).encode())
write("directive_payloads", "not-an-object", b"\x01[1]")

# ---- event_payloads: the selector byte (the event's parse_*), then the payload
sig = {"signer": "investigator.ben", "role": "investigator", "signed_ms": 1760000000000, "meaning": "I confirm"}
events = [
    {"participant": "101-001", "reason": "moved", "role": "investigator", "study_version": 2},
    {"node_id": "101-N1", "site_id": "101", "kind": "site", "study_id": "S1", "hub_url": "https://hub:8443",
     "hub_fingerprint": "ab" * 32, "public_key": "cd" * 32},
    {"directive_seq": 3, "type": "grant.slots", "hash": "ef" * 32},
    {"text": "fridge checked", "role": "coordinator", "site_id": "101"},
    {"participant": "101-001", "status": "screened", "factors": {"site": "101", "diabetes": "no"},
     "eligibility": ["yes", "yes"], "role": "coordinator"},
    {"participant": "101-001", "randomization_number": "R01-0001", "visit": "V1", "kits": ["4821907"],
     "esignature": sig, "sealed": "c2VhbGVk", "stratum": 1, "stratum_label": "site=101;diabetes=no", "slot": 3},
    {"arm": "A", "kit_types": {"4821907": "VLC25"}},
    {"sequence": 1, "open_arms": [True, True], "totals": [[1.0, 0.0]], "draw": 0.25, "arm": 0},
    {"participant": "101-001", "visit": "V2", "kits": ["4821907"], "day": 28, "window": [26, 30], "sealed": "c2VhbGVk"},
    {"participant": "101-001", "visit": "V2", "old_kit": "4821907", "new_kit": "5133068", "condition": "damaged",
     "reason": "dropped", "esignature": sig, "sealed": "c2VhbGVk"},
    {"kit_types": {"4821907": "VLC25", "5133068": "PLC"}},
    {"participant": "101-001", "reason": "moved", "role": "investigator", "esignature": sig},
    {"participant": "101-001", "role": "investigator"},
    {"participant": "101-001", "to_site": "102", "reason": "moved", "role": "coordinator"},
    {"participant": "101-001", "reason": "adverse event", "flag": "code_break", "esignature": sig, "sealed": "c2VhbGVk"},
    {"arm": "B"},
    {"shipment": "SHP-0001", "kits": [{"kit": "4821907", "condition": "received"},
                                      {"kit": "5133068", "condition": "damaged"}], "esignature": sig, "location": "fridge 2"},
    {"kit": "4821907", "reason": "fridge alarm", "temperature_celsius": 9.5},
    {"kit": "4821907", "participant": "101-001", "units_returned": 3, "visit": "V2"},
    {"kit": "4821907", "reason": "expired", "esignature": sig, "witness": sig},
    {"participant": "101-001", "visit": "V2", "operation": "dispense", "sealed": "c2VhbGVk"},
    {"shortages": [{"kit_type": "VLC25", "needed": 2, "dispensable": 0}]},
    {"participant": "101-001", "visit": "V3", "outcome": "missed", "role": "coordinator", "reason": "ill"},
    {"kits": ["4821907"], "minimum_celsius": 1.5, "maximum_celsius": 12.0, "duration_minutes": 45,
     "reason": "power cut", "location": "fridge 2"},
    {"kits": ["4821907", "5133068"], "location": "fridge 2"},
    {"to_node": "101-N2", "kits": ["4821907"], "reason": "second tablet", "role": "coordinator"},
    {"kit": "4821907", "expiry": "2028-06-30", "role": "pharmacist"},
    {"depot": "DE-FRA", "kits": ["4821907"], "reason": "expired", "courier": "DHL", "tracking": "123",
     "role": "pharmacist", "esignature": sig},
]
for i, e in enumerate(events):
    write("event_payloads", "parser-%02d" % i, bytes([i]) + dumps(e).encode())
write("event_payloads", "study-version-string", b"\x00" + dumps({"study_version": "2"}).encode())
write("event_payloads", "screened-bad-status", b"\x04" + dumps({"participant": "1", "status": "gone"}).encode())
write("event_payloads", "truncated", b"\x05{\"participant\":")

# ---- study_loader and supply_scenario: the examples, and broken ones
for f in ["study-blocks.json", "study-minimization.json", "study-blocks-v2.json", "supply-reference.json"]:
    write("study_loader", f, open(os.path.join(root, "packaging/examples", f), "rb").read())
study = json.load(open(os.path.join(root, "packaging/examples/study-blocks.json")))
write("study_loader", "arm-ratio-0.json", dumps(dict(study, arms=[dict(study["arms"][0], ratio=0)] + study["arms"][1:])))
write("study_loader", "no-arms.json", dumps({k: v for k, v in study.items() if k != "arms"}))
write("study_loader", "not-json", "{\"format\": 1,")
scenario = open(os.path.join(root, "packaging/examples/supply-reference-scenario.json"), "rb").read()
write("supply_scenario", "reference.json", scenario)
sc = json.loads(scenario)
write("supply_scenario", "participants-0.json", dumps(dict(sc, participants=0)))
write("supply_scenario", "unknown-allocation.json", dumps(dict(sc, allocation="round_robin")))
write("supply_scenario", "minimal.json", dumps({"participants": 10, "sites": {"count": 2}}))
write("supply_scenario", "not-an-object", "[]")

# ---- node_request_body: the bodies of the node's routes (tests/support/node_api_client.h, tests/node)
node_bodies = {
    "login": {"user": "coordinator.ana", "password": "correct horse"},
    "screen": {"factors": {"diabetes": "no"}, "eligibility": [True, "yes"], "cohort": ""},
    "screen-failure": {"eligibility": ["no"], "screen_failure_reason": "age"},
    "randomize": {"signature_password": "correct horse"},
    "destroy": {"reason": "expired", "signature_password": "pw", "witness": "pharm.bo", "witness_password": "pw2"},
    "quarantine": {"reason": "fridge alarm", "temperature_celsius": 9.5},
    "return": {"units_returned": 3, "visit": "V2"},
    "return-fraction": {"units_returned": 2.5},
    "return-huge": {"units_returned": 1e300},
    "excursion": {"kits": ["4821907"], "location": "fridge 2", "minimum_celsius": 1.5, "maximum_celsius": 12,
                  "duration_minutes": 45, "reason": "power cut"},
    "excursion-huge": {"kits": ["4821907"], "duration_minutes": -1e19},
    "handover": {"to_node": "101-N2", "kits": ["4821907"], "reason": "second tablet"},
    "receive": {"kits": [{"kit": "4821907", "condition": "received"}], "location": "fridge 2"},
    "visit": {"outcome": "missed", "reason": "ill", "visit": "V3"},
    "dispense": {"visit": "V2", "override_reason": "late", "order_reason": "", "replace_kit": "1",
                 "replace_condition": "damaged"},
    "return-shipment": {"depot": "DE-FRA", "kits": ["4821907"], "courier": "DHL", "tracking": "123"},
    "transfer": {"to_site": "102", "reason": "moved"},
}
for name, b in node_bodies.items():
    write("node_request_body", name, dumps(b))
write("node_request_body", "empty", "")
write("node_request_body", "array", "[1,2]")
write("node_request_body", "deep", "{\"a\":[[[[1]]]]}")
write("node_request_body", "long-reason", dumps({"reason": "x" * 2001}))

# ---- hub_request_body: the bodies of the hub's routes (tests/support/hub_api.h, tests/hub)
hub_bodies = {
    "login": {"user": "admin", "password": "correct horse"},
    "add-user": {"name": "coordinator.ana", "role": "coordinator", "sites": ["101"], "password": "pw"},
    "signed-reason": {"reason": "lost tablet", "signature": {"password": "pw"}},
    "kit-decision": {"kits": ["4821907"], "reason": "within stability", "signature": {"password": "pw"}},
    "amendment": {"document": "{\"format\":1}", "dry_run": True, "reason": "v2", "signature": {"password": "pw"}},
    "export": {"format": "csv", "reason": "DSMB", "signature": {"password": "pw"}},
    "transfer": {"from_depot": "DE-FRA", "to_depot": "US-NJ", "kit_type": "VLC25", "count": 4,
                 "reason": "rebalance", "signature": {"password": "pw"}},
    "transfer-huge-count": {"from_depot": "DE-FRA", "to_depot": "US-NJ", "kit_type": "VLC25", "count": 4294967297,
                            "signature": {"password": "pw"}},
    "receive": {"kits": [{"kit": "4821907", "condition": "damaged"}], "signature": {"password": "pw"}},
    "ship": {"courier": "DHL", "tracking": "123", "signature": {"password": "pw"}},
    "lot-add": {"lot": "L03", "expiry": "2028-01-31", "reason": "new lot"},
    "lot-release": {"countries": ["FR", "DE"], "reason": "QP release", "signature": {"password": "pw"}},
    "supply-run": {"site": "101"},
    "unknown-field": {"user": "admin", "password": "pw", "extra": 1},
    "signature-wrong-shape": {"reason": "r", "signature": "pw"},
}
for name, b in hub_bodies.items():
    write("hub_request_body", name, dumps(b))
write("hub_request_body", "empty-id", dumps({"user": "", "password": "pw"}))
write("hub_request_body", "stray-continuation", b'{"user":"\xc3\x80\x80","password":"pw"}')
