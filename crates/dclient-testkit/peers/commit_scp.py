#!/usr/bin/env python3
"""Storage Commitment Push Model SCP (pynetdicom 3) for dclient's tests.

Answers N-ACTION-RQ (Action Type 1) with --action-status, then reports (N-EVENT-REPORT-RQ,
Event Type 1 when everything is committed, 2 otherwise):
  --mode same : on the requesting association, once our N-ACTION-RSP is out (pynetdicom
                sends the RSP only after the handler returns: a report sent from inside the
                handler would overtake it, so a thread waits for EVT_DIMSE_SENT first);
  --mode new  : on a new association to the requestor (--reply AET=HOST:PORT, looked up by
                the calling AE title), proposing the SCP role by role selection;
  --mode none : never.
Instances whose SOP Instance UID contains --fail-substr are reported failed with Failure
Reason --reason. Every received request is printed.

usage: commit_scp.py --port N [--aet COMMITSCP] [--mode same|new|none] [--delay S]
                     [--reply AE=HOST:PORT] [--fail-substr S] [--reason 0x0112]
                     [--action-status 0x0000]
"""
import argparse, threading, time
from pydicom.dataset import Dataset
from pynetdicom import AE, evt, build_role
from pynetdicom.sop_class import StorageCommitmentPushModel

SC_INSTANCE = "1.2.840.10008.1.20.1.1"
p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--aet", default="COMMITSCP")
p.add_argument("--mode", choices=["same", "new", "none"], default="same")
p.add_argument("--delay", type=float, default=0.2)
p.add_argument("--reply", action="append", default=[])
p.add_argument("--fail-substr", default="")
p.add_argument("--reason", type=lambda s: int(s, 0), default=0x0112)
p.add_argument("--action-status", type=lambda s: int(s, 0), default=0x0000)
a = p.parse_args()
replies = {k: (v.rsplit(":", 1)[0], int(v.rsplit(":", 1)[1])) for k, v in (r.split("=", 1) for r in a.reply)}
T0 = time.time()
def log(*x): print("[%7.3f]" % (time.time() - T0), *x, flush=True)

def build_report(info):
    rep = Dataset(); rep.TransactionUID = info.TransactionUID
    ok, bad = [], []
    for it in info.ReferencedSOPSequence:
        r = Dataset(); r.ReferencedSOPClassUID = it.ReferencedSOPClassUID
        r.ReferencedSOPInstanceUID = it.ReferencedSOPInstanceUID
        if a.fail_substr and a.fail_substr in it.ReferencedSOPInstanceUID:
            r.FailureReason = a.reason; bad.append(r)
        else:
            ok.append(r)
    if ok: rep.ReferencedSOPSequence = ok
    if bad: rep.FailedSOPSequence = bad
    return (2 if bad else 1), rep

RSP_SENT = {}

def on_dimse_sent(ev):
    if type(ev.message).__name__ == "N_ACTION_RSP":
        RSP_SENT.setdefault(ev.assoc, threading.Event()).set()

def send_same(assoc, info):
    RSP_SENT.setdefault(assoc, threading.Event()).wait(10)
    time.sleep(a.delay)
    if not assoc.is_established:
        log("SAME: association no longer established: report NOT sent"); return
    etype, rep = build_report(info)
    log(f"SAME: sending N-EVENT-REPORT-RQ event type {etype}")
    st, _ = assoc.send_n_event_report(rep, etype, StorageCommitmentPushModel, SC_INSTANCE)
    log("SAME: N-EVENT-REPORT-RSP status", "0x%04X" % st.Status if "Status" in st else "NONE")

def send_new(calling, info):
    time.sleep(a.delay)
    if calling not in replies:
        log(f"NEW: no --reply for {calling!r}: report NOT sent"); return
    host, port = replies[calling]
    etype, rep = build_report(info)
    ae2 = AE(ae_title=a.aet)
    ae2.add_requested_context(StorageCommitmentPushModel)
    ext = [build_role(StorageCommitmentPushModel, scu_role=False, scp_role=True)]
    assoc2 = ae2.associate(host, port, ae_title=calling, ext_neg=ext)
    if not assoc2.is_established:
        log("NEW: association to the requestor failed"); return
    log(f"NEW: sending N-EVENT-REPORT-RQ event type {etype}")
    st, _ = assoc2.send_n_event_report(rep, etype, StorageCommitmentPushModel, SC_INSTANCE)
    log("NEW: N-EVENT-REPORT-RSP status", "0x%04X" % st.Status if "Status" in st else "NONE")
    assoc2.release()

def on_action(ev):
    info = ev.action_information
    calling = ev.assoc.requestor.ae_title
    log(f"N-ACTION-RQ from {calling!r} action type {ev.action_type} "
        f"TransactionUID {info.get('TransactionUID')} refs={len(info.get('ReferencedSOPSequence', []))}")
    if a.action_status == 0 and a.mode != "none":
        if a.mode == "same":
            RSP_SENT.setdefault(ev.assoc, threading.Event())
            threading.Thread(target=send_same, args=(ev.assoc, info), daemon=True).start()
        else:
            threading.Thread(target=send_new, args=(calling, info), daemon=True).start()
    return a.action_status, None

ae = AE(ae_title=a.aet)
ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
ae.add_supported_context("1.2.840.10008.1.1")
log(f"Storage Commitment SCP {a.aet} on 127.0.0.1:{a.port} mode={a.mode}")
ae.start_server(("127.0.0.1", a.port), block=True,
                evt_handlers=[(evt.EVT_N_ACTION, on_action), (evt.EVT_DIMSE_SENT, on_dimse_sent)])
