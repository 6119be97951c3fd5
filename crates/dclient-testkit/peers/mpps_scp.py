#!/usr/bin/env python3
"""Modality Performed Procedure Step SCP (1.2.840.10008.3.1.2.3.3, pynetdicom 3) for
dclient's tests, with the state checks of PS3.4 F.7.2:
N-CREATE: the status must be IN PROGRESS (else 0x0106); a UID already known is 0x0111.
N-SET:    an unknown UID is 0x0112; a step COMPLETED or DISCONTINUED may no longer be
          updated: 0x0110 with Error ID 0xA710; a new status other than IN PROGRESS,
          COMPLETED, DISCONTINUED is 0x0106.
Each step is written as DIR/<uid>.json (its attributes, DICOM JSON) after every change.
usage: mpps_scp.py --port N [--aet MPPSSCP] --dump DIR
"""
import argparse, json, logging, os, time
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS

p = argparse.ArgumentParser(); p.add_argument("--port", type=int, required=True)
p.add_argument("--aet", default="MPPSSCP"); p.add_argument("--dump", required=True)
a = p.parse_args()
_h = logging.StreamHandler(); _h.setLevel(logging.ERROR); logging.getLogger("pynetdicom").addHandler(_h)
T0 = time.time(); store = {}
def log(*x): print("[%7.3f]" % (time.time() - T0), *x, flush=True)

def fail(status, comment, error_id=None):
    st = Dataset(); st.Status = status; st.ErrorComment = comment[:64]
    if error_id is not None: st.ErrorID = error_id
    log("  -> failure 0x%04X %s" % (status, comment)); return st, None

def save(uid):
    os.makedirs(a.dump, exist_ok=True)
    with open(os.path.join(a.dump, uid + ".json.tmp"), "w") as f:
        f.write(store[uid].to_json())
    os.replace(os.path.join(a.dump, uid + ".json.tmp"), os.path.join(a.dump, uid + ".json"))

def on_create(ev):
    attrs = ev.attribute_list; uid = ev.request.AffectedSOPInstanceUID
    log(f"N-CREATE-RQ from {ev.assoc.requestor.ae_title!r} uid={uid}")
    if uid is not None and uid in store: return fail(0x0111, "Duplicate SOP Instance")
    if attrs.get("PerformedProcedureStepStatus", "") != "IN PROGRESS":
        return fail(0x0106, "N-CREATE status must be IN PROGRESS")
    ds = Dataset(); ds.update(attrs); store[uid] = ds; save(uid)
    log(f"  -> created {uid}")
    return 0x0000, Dataset()

def on_set(ev):
    mods = ev.modification_list; uid = ev.request.RequestedSOPInstanceUID
    log(f"N-SET-RQ from {ev.assoc.requestor.ae_title!r} uid={uid}")
    if uid not in store: return fail(0x0112, "No such SOP Instance")
    ds = store[uid]
    if ds.PerformedProcedureStepStatus in ("COMPLETED", "DISCONTINUED"):
        return fail(0x0110, "Performed Procedure Step Object may no longer be updated", 0xA710)
    if mods.get("PerformedProcedureStepStatus", "IN PROGRESS") not in ("IN PROGRESS", "COMPLETED", "DISCONTINUED"):
        return fail(0x0106, "Invalid PerformedProcedureStepStatus")
    ds.update(mods); save(uid)
    log(f"  -> {uid} now {ds.PerformedProcedureStepStatus}")
    return 0x0000, Dataset()

ae = AE(ae_title=a.aet)
ae.add_supported_context(MPPS)
ae.add_supported_context("1.2.840.10008.1.1")
log(f"MPPS SCP {a.aet} on 127.0.0.1:{a.port}")
ae.start_server(("127.0.0.1", a.port), block=True,
                evt_handlers=[(evt.EVT_N_CREATE, on_create), (evt.EVT_N_SET, on_set)])
