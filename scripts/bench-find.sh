#!/usr/bin/env bash
# C-FIND benchmark: N image-level matches (default 5,000 in 100 studies) from an Orthanc
# started here with TCP_NODELAY=1, queried by `dclient find` (release build), DCMTK's
# findscu and pynetdicom's findscu, alternating in each round. Prints a Markdown table of
# median wall time, client CPU (user+sys of the client process) and peak RSS, with ratios
# to DCMTK findscu. Every run's output is checked to hold N matches.
#
#   scripts/bench-find.sh            # ROUNDS=7 N=5000 STUDIES=100
#   ROUNDS=3 N=1000 scripts/bench-find.sh
#
# Needs: cargo, /usr/sbin/Orthanc, /usr/bin/findscu, /usr/bin/storescu, python3 with
# pydicom and pynetdicom (all installed by .ci/run). Traffic stays on 127.0.0.1.
# DICOM_FINDSCU=/path/to/dicom-findscu adds dicom-rs's findscu (`cargo install
# dicom-findscu`) to the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
N=${N:-5000}
STUDIES=${STUDIES:-100}

for tool in /usr/sbin/Orthanc /usr/bin/findscu /usr/bin/storescu; do
    [[ -x $tool ]] || { echo "missing $tool (run .ci/run once to install it)" >&2; exit 2; }
done
python3 -c 'import pydicom, pynetdicom' || { echo "python3 needs pydicom and pynetdicom" >&2; exit 2; }

echo "== building dclient (release)" >&2
cargo build --release -q -p dclient-cli
DCLIENT=$PWD/target/release/dclient

WORK=$(mktemp -d)
ORTHANC_PID=
cleanup() {
    if [[ -n $ORTHANC_PID ]]; then
        kill "$ORTHANC_PID" 2>/dev/null || true
        wait "$ORTHANC_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

read -r DICOM_PORT HTTP_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')

echo "== generating $N instances in $STUDIES studies" >&2
python3 - "$WORK/files" "$N" "$STUDIES" <<'PY'
import os, sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
out, n, studies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out)
CT = "1.2.840.10008.5.1.4.1.1.2"
per = -(-n // studies)
made = 0
for s in range(studies):
    study, series = generate_uid(), generate_uid()
    for i in range(min(per, n - made)):
        sop = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CT, sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CT, sop
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20200101", "101500", f"A{s:04d}"
        ds.Modality = "CT"
        ds.PatientName, ds.PatientID = f"Bench^Patient{s:03d}", f"P{s:04d}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, i + 1
        ds.save_as(os.path.join(out, f"{s:03d}-{i:05d}.dcm"), enforce_file_format=True)
        made += 1
PY

cat >"$WORK/orthanc.json" <<JSON
{
  "Name": "bench-find", "StorageDirectory": "$WORK/storage", "IndexDirectory": "$WORK/index",
  "StorageCompression": false, "Plugins": [], "LuaScripts": [],
  "HttpServerEnabled": true, "HttpPort": $HTTP_PORT, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "SslEnabled": false, "OrthancExplorerEnabled": false,
  "DicomServerEnabled": true, "DicomAet": "ORTHANC", "DicomPort": $DICOM_PORT,
  "DicomCheckCalledAet": false, "DicomModalities": {}, "DicomAlwaysAllowEcho": true,
  "DicomAlwaysAllowStore": true, "DicomAlwaysAllowFind": true, "DicomAlwaysAllowGet": true,
  "DicomAlwaysAllowMove": true, "UnknownSopClassAccepted": true, "SaveJobs": false,
  "DicomAssociationCloseDelay": 0, "LimitFindResults": 0, "LimitFindInstances": 0
}
JSON

echo "== starting Orthanc (DICOM $DICOM_PORT, HTTP $HTTP_PORT)" >&2
TCP_NODELAY=1 /usr/sbin/Orthanc "$WORK/orthanc.json" >"$WORK/orthanc.log" 2>&1 &
ORTHANC_PID=$!
for _ in $(seq 1 300); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $DICOM_PORT), 0.2)" 2>/dev/null; then
        break
    fi
    kill -0 "$ORTHANC_PID" || { cat "$WORK/orthanc.log" >&2; exit 1; }
    sleep 0.1
done

echo "== storing the instances with storescu" >&2
TCP_NODELAY=1 timeout 900 /usr/bin/storescu -q -aet BENCH -aec ORTHANC +sd 127.0.0.1 "$DICOM_PORT" "$WORK/files"
STORED=$(python3 -c "
import json, urllib.request
print(json.load(urllib.request.urlopen('http://127.0.0.1:$HTTP_PORT/statistics', timeout=30))['CountInstances'])")
[[ $STORED == "$N" ]] || { echo "Orthanc holds $STORED instances, expected $N" >&2; exit 1; }

echo "== $ROUNDS rounds" >&2
python3 - "$ROUNDS" "$N" "$STUDIES" "$DICOM_PORT" "$DCLIENT" "$WORK" "${DICOM_FINDSCU:-}" <<'PY'
import json, os, statistics, subprocess, sys, time
rounds, n, studies, port, dclient, work, dicomrs = sys.argv[1:8]
rounds, n, studies = int(rounds), int(n), int(studies)
host = "127.0.0.1"
env = dict(os.environ, TCP_NODELAY="1")
keys_dcmtk = ["-k", "QueryRetrieveLevel=IMAGE", "-k", "SOPInstanceUID", "-k", "InstanceNumber"]
keys_py = ["-k", "QueryRetrieveLevel=IMAGE", "-k", "SOPInstanceUID=", "-k", "InstanceNumber="]

def lines_minus_header(text):
    return len(text.splitlines()) - 1

def json_len(text):
    return len(json.loads(text))

def pending(text):
    return text.count("(Pending)") or text.count("Pending")

# (name, command, how to count the matches in its output, expected count)
tools = [
    ("dclient find (table)", [dclient, "find", "image", host, port, "--host-ae", "ORTHANC"], lines_minus_header, n),
    ("dclient find --format json", [dclient, "find", "image", host, port, "--host-ae", "ORTHANC", "--format", "json"], json_len, n),
    ("DCMTK findscu", ["/usr/bin/findscu", "-S", "-aec", "ORTHANC", *keys_dcmtk, host, port], pending, n),
    ("pynetdicom findscu -v", [sys.executable, "-m", "pynetdicom", "findscu", "-v", "-S", "-aec", "ORTHANC", *keys_py, host, port], pending, n),
]
if dicomrs:
    tools.append(("dicom-rs findscu", [dicomrs, "-S", "--called-ae-title", "ORTHANC", "-q", "QueryRetrieveLevel=IMAGE", "-q", "SOPInstanceUID", "-q", "InstanceNumber", f"{host}:{port}"], lambda t: t.count("Match #"), n))
# Memory must not grow with the number of matches: the same client at the STUDY level.
tools.append((f"dclient find study ({studies} matches)", [dclient, "find", "study", host, port, "--host-ae", "ORTHANC"], lines_minus_header, studies))

def run(cmd):
    out, stats = os.path.join(work, "out.txt"), os.path.join(work, "time.txt")
    # GNU time measures the client process alone (wall, user+sys CPU, peak RSS).
    full = ["/usr/bin/time", "-o", stats, "-f", "%e %U %S %M", *cmd]
    with open(out, "wb") as f:
        rc = subprocess.call(full, stdout=f, stderr=subprocess.STDOUT, env=env)
    text = open(out, encoding="utf-8", errors="replace").read()
    if rc != 0:
        sys.exit(f"{cmd[0]} failed ({rc}):\n{text[-2000:]}")
    wall, user, system, rss = open(stats).read().split()[-4:]
    return float(wall), float(user) + float(system), int(rss) / 1024, text

res = {t[0]: [] for t in tools}
for r in range(rounds):
    for name, cmd, count, expected in tools:
        wall, cpu, rss, text = run(cmd)
        if count is not None and count(text) != expected:
            sys.exit(f"{name}: {count(text)} matches, expected {expected}\n{text[-2000:]}")
        res[name].append((wall, cpu, rss))
    print(f"round {r + 1}/{rounds} done", file=sys.stderr)

med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in res.items()}
base = med["DCMTK findscu"]
print(f"\n{n:,} image-level matches from Orthanc (TCP_NODELAY=1), medians of {rounds} alternating rounds:\n")
print("| client | wall (s) | client CPU (s) | peak RSS (MiB) | wall vs findscu | CPU vs findscu |")
print("|---|---:|---:|---:|---:|---:|")
for name, *_ in tools:
    w, c, m = med[name]
    print(f"| {name} | {w:.3f} | {c:.3f} | {m:.1f} | {w / base[0]:.2f}x | {c / base[1]:.2f}x |")
PY
