#!/usr/bin/env python3
"""Storage Commitment Push Model SCU (pynetdicom 3) for dclient's tests: sends one N-ACTION
(Action Type 1, Transaction UID --txuid or a new one) for CLASS:INSTANCE pairs to
HOST PORT AEC and waits up to --wait seconds for the report on the requesting association.
Prints one JSON line: {"action_status", "event_type", "transaction_uid", "committed":
[instance...], "failed": [[instance, reason]...]} (event_type null when no report came).
"""
import argparse, json, sys, threading, time
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel

p = argparse.ArgumentParser()
p.add_argument("host"); p.add_argument("port", type=int); p.add_argument("aec")
p.add_argument("--aet", default="PYSCU")
p.add_argument("--wait", type=float, default=10)
p.add_argument("--txuid")
p.add_argument("refs", nargs="+")
a = p.parse_args()
got = {}
done = threading.Event()

def on_report(ev):
    info = ev.event_information
    got["event_type"] = ev.event_type
    got["transaction_uid"] = str(info.get("TransactionUID", ""))
    got["committed"] = [str(i.ReferencedSOPInstanceUID) for i in info.get("ReferencedSOPSequence", [])]
    got["failed"] = [[str(i.ReferencedSOPInstanceUID), int(i.get("FailureReason", 0))]
                     for i in info.get("FailedSOPSequence", [])]
    done.set()
    return 0x0000, None

ae = AE(ae_title=a.aet)
ae.add_requested_context(StorageCommitmentPushModel)
assoc = ae.associate(a.host, a.port, ae_title=a.aec, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
if not assoc.is_established:
    print(json.dumps({"error": "association failed"})); sys.exit(2)
ds = Dataset()
ds.TransactionUID = a.txuid or generate_uid(prefix=None)
ds.ReferencedSOPSequence = []
for r in a.refs:
    c, i = r.split(":", 1)
    it = Dataset(); it.ReferencedSOPClassUID = c; it.ReferencedSOPInstanceUID = i
    ds.ReferencedSOPSequence.append(it)
st, _ = assoc.send_n_action(ds, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
status = st.Status if "Status" in st else None
done.wait(a.wait)
if assoc.is_established:
    assoc.release()
print(json.dumps({"action_status": status, "event_type": got.get("event_type"),
                  "transaction_uid": got.get("transaction_uid"), "sent_uid": str(ds.TransactionUID),
                  "committed": got.get("committed", []), "failed": got.get("failed", [])}), flush=True)
