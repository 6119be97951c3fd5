#!/usr/bin/env python3
"""A storage SCP (pynetdicom 3) that fails on cue, for dclient's retry and verification
tests, with a Study Root C-FIND (STUDY, SERIES, IMAGE levels, hierarchical keys) over what
it holds, so that a client can verify what it sent.

--fail-every N      every Nth C-STORE-RQ (counted over all associations) of an instance
                    that never failed before is answered --fail-status (default 0xA700,
                    out of resources) with an Error Comment; the next try of that
                    instance is stored: a destination that fails some, then recovers.
--permanent-substr S  an instance whose SOP Instance UID contains S is always refused
                    with --permanent-status (default 0xA900) and an Error Comment.
--drop-once-substr S  an instance whose SOP Instance UID contains S is answered success
                    the first time but not kept: lost after the response, as if deleted.
Stored instances are DIR/<SOPInstanceUID>.dcm (written to a temporary name, then renamed).
usage: flaky_store_scp.py --port N [--aet FLAKY] --dir DIR [options above]
"""
import argparse, logging, os, threading, time
from pydicom.dataset import Dataset
from pynetdicom import AE, evt, AllStoragePresentationContexts
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True); p.add_argument("--aet", default="FLAKY")
p.add_argument("--dir", required=True)
p.add_argument("--fail-every", type=int, default=0)
p.add_argument("--fail-status", type=lambda s: int(s, 0), default=0xA700)
p.add_argument("--permanent-substr", default=None)
p.add_argument("--permanent-status", type=lambda s: int(s, 0), default=0xA900)
p.add_argument("--drop-once-substr", default=None)
a = p.parse_args()
_h = logging.StreamHandler(); _h.setLevel(logging.ERROR); logging.getLogger("pynetdicom").addHandler(_h)
T0 = time.time(); lock = threading.Lock()
index = {}          # SOP Instance UID -> (study, series, sop class)
failed_once = set(); dropped_once = set(); count = [0]
def log(*x): print("[%7.3f]" % (time.time() - T0), *x, flush=True)

def on_store(ev):
    ds = ev.dataset; ds.file_meta = ev.file_meta
    uid = str(ds.SOPInstanceUID)
    with lock:
        count[0] += 1; n = count[0]
        if a.permanent_substr and a.permanent_substr in uid:
            log(f"C-STORE #{n} {uid}: refused 0x{a.permanent_status:04X} (permanent)")
            st = Dataset(); st.Status = a.permanent_status; st.ErrorComment = "refused for good by the test"
            return st
        if a.fail_every and n % a.fail_every == 0 and uid not in failed_once:
            failed_once.add(uid)
            log(f"C-STORE #{n} {uid}: refused 0x{a.fail_status:04X} (transient)")
            st = Dataset(); st.Status = a.fail_status; st.ErrorComment = "busy, try again later"
            return st
        if a.drop_once_substr and a.drop_once_substr in uid and uid not in dropped_once:
            dropped_once.add(uid)
            log(f"C-STORE #{n} {uid}: answered success, dropped")
            return 0x0000
    tmp = os.path.join(a.dir, ".tmp-" + uid); final = os.path.join(a.dir, uid + ".dcm")
    ds.save_as(tmp, enforce_file_format=True); os.replace(tmp, final)
    with lock:
        index[uid] = (str(ds.StudyInstanceUID), str(ds.get("SeriesInstanceUID", "")), str(ds.SOPClassUID))
    log(f"C-STORE #{n} {uid}: stored")
    return 0x0000

def value(q, kw):
    v = q.get(kw, "")
    return "" if v is None else str(v)

def on_find(ev):
    q = ev.identifier; level = value(q, "QueryRetrieveLevel")
    study, series = value(q, "StudyInstanceUID"), value(q, "SeriesInstanceUID")
    with lock:
        items = list(index.items())
    log(f"C-FIND {level} study={study!r} series={series!r}")
    if level == "STUDY":
        groups = {}
        for sop, (st, se, cl) in items:
            if not study or st == study: groups.setdefault(st, []).append(sop)
        for st, sops in groups.items():
            if ev.is_cancelled: yield 0xFE00, None; return
            r = Dataset(); r.QueryRetrieveLevel = "STUDY"; r.StudyInstanceUID = st
            if "NumberOfStudyRelatedInstances" in q: r.NumberOfStudyRelatedInstances = len(sops)
            yield 0xFF00, r
    elif level == "SERIES":
        if not study: yield 0xA900, None; return
        groups = {}
        for sop, (st, se, cl) in items:
            if st == study and (not series or se == series): groups.setdefault(se, []).append(sop)
        for se, sops in groups.items():
            r = Dataset(); r.QueryRetrieveLevel = "SERIES"; r.StudyInstanceUID = study; r.SeriesInstanceUID = se
            if "NumberOfSeriesRelatedInstances" in q: r.NumberOfSeriesRelatedInstances = len(sops)
            yield 0xFF00, r
    elif level == "IMAGE":
        if not study or not series: yield 0xA900, None; return
        for sop, (st, se, cl) in items:
            if st == study and se == series:
                r = Dataset(); r.QueryRetrieveLevel = "IMAGE"; r.StudyInstanceUID = st
                r.SeriesInstanceUID = se; r.SOPInstanceUID = sop
                if "SOPClassUID" in q: r.SOPClassUID = cl
                yield 0xFF00, r
    else:
        yield 0xA900, None

ae = AE(ae_title=a.aet)
ae.supported_contexts = AllStoragePresentationContexts
ae.add_supported_context(FIND); ae.add_supported_context("1.2.840.10008.1.1")
ae.maximum_associations = 16
log(f"flaky storage SCP {a.aet} on 127.0.0.1:{a.port}")
ae.start_server(("127.0.0.1", a.port), block=True,
                evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_C_FIND, on_find)])
