#!/usr/bin/env bash
# Receiving benchmark: DCMTK storescu sends N files of 512 KB (default 1000) to
#   - `dclient serve` (release build, files + SQLite index),
#   - DCMTK storescp (writing files),
#   - Orthanc (files + its SQLite index),
# each on a fresh storage folder, ROUNDS times (default 3). Reports per server the median
# wall time of the storescu run, the server's CPU time (user+system) during it, and the
# server's peak RSS (VmHWM). Every server gets the same maximum PDU (16384, the DCMTK and
# Orthanc default). All traffic stays on 127.0.0.1; every wait is bounded.
#
# usage: scripts/bench-serve.sh [N_FILES] [ROUNDS]
#        SERVERS="dclient storescp" scripts/bench-serve.sh ...   (a subset)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-1000}
ROUNDS=${2:-3}
PDU=16384
# As in production: no backtrace capture on errors (a debugging setting).
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
read -r -a KINDS <<<"${SERVERS:-dclient storescp orthanc}"
WORK=$(mktemp -d /tmp/bench-serve.XXXXXX)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in /usr/bin/storescu /usr/bin/storescp /usr/sbin/Orthanc; do
    [[ -x $tool ]] || { echo "missing $tool (.ci/run installs it)" >&2; exit 1; }
done

echo "== building dclient (release)" >&2
cargo build --release -q -p dclient-cli
DCLIENT=$PWD/target/release/dclient

echo "== generating $N files of 512 KB" >&2
python3 - "$WORK/in" "$N" <<'EOF'
import os, sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
study, series = generate_uid(), generate_uid()
pixels = bytes((i * 7) & 0xFF for i in range(512 * 512 * 2))
for i in range(n):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID, ds.PatientName = "BENCH", "Bench^Mark"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.StudyDate, ds.Modality, ds.InstanceNumber = "20240101", "CT", i + 1
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(os.path.join(out, f"{i:05d}.dcm"), enforce_file_format=True)
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() { # port, seconds
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "server did not listen on $1" >&2
    return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

start_server() { # kind, port, dir
    local kind=$1 port=$2 dir=$3
    mkdir -p "$dir"
    case $kind in
    dclient)
        "$DCLIENT" serve -q --port "$port" --dir "$dir/store" --ae BENCH --max-pdu $PDU \
            >"$dir/log" 2>&1 &
        ;;
    storescp)
        env TCP_NODELAY=1 /usr/bin/storescp --aetitle BENCH --max-pdu $PDU -od "$dir" \
            "$port" >"$dir/log" 2>&1 &
        ;;
    orthanc)
        cat >"$dir/orthanc.json" <<EOF
{ "Name": "bench", "StorageDirectory": "$dir/storage", "IndexDirectory": "$dir/index",
  "StorageCompression": false, "Plugins": [], "HttpServerEnabled": true,
  "HttpPort": $(free_port), "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "DicomServerEnabled": true, "DicomAet": "BENCH", "DicomPort": $port,
  "DicomCheckCalledAet": false, "MaximumPduLength": $PDU, "DicomAlwaysAllowStore": true,
  "SaveJobs": false, "OrthancExplorerEnabled": false, "WebDavEnabled": false,
  "MetricsEnabled": false }
EOF
        /usr/sbin/Orthanc "$dir/orthanc.json" >"$dir/log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    wait_port "$port" 30
}

count_files() { find "$1" -type f \( -name '*.dcm' -o -name 'CT.*' -o -path '*/storage/*' \) | wc -l; }

declare -A WALL CPU RSS
for ((r = 1; r <= ROUNDS; r++)); do
    for kind in "${KINDS[@]}"; do
        dir=$WORK/run-$kind-$r
        port=$(free_port)
        start_server "$kind" "$port" "$dir"
        cpu0=$(cpu_ticks "$SERVER_PID")
        t0=$(date +%s.%N)
        timeout 600 env TCP_NODELAY=1 /usr/bin/storescu -q +sd +r -aet SENDER -aec BENCH \
            --max-pdu $PDU 127.0.0.1 "$port" "$WORK/in"
        t1=$(date +%s.%N)
        sleep 0.5 # let the server finish writing its last file and index entry
        cpu1=$(cpu_ticks "$SERVER_PID")
        hwm=$(hwm_kb "$SERVER_PID")
        # dclient stops cleanly on Ctrl-C (SIGINT); the others on SIGTERM.
        if [[ $kind == dclient ]]; then kill -INT "$SERVER_PID"; else kill -TERM "$SERVER_PID"; fi
        timeout 30 tail --pid="$SERVER_PID" -f /dev/null || kill -9 "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
        got=$(count_files "$dir")
        if [[ $got -lt $N ]]; then
            echo "$kind round $r: only $got of $N files stored" >&2
            exit 1
        fi
        WALL[$kind]+="$(echo "$t1 - $t0" | bc) "
        CPU[$kind]+="$(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l) "
        RSS[$kind]+="$((hwm / 1024)) "
        printf '%-9s round %d: %6.2f s wall, %6.2f s CPU, %4d MB peak RSS\n' "$kind" "$r" \
            "$(echo "$t1 - $t0" | bc)" "$(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l)" \
            "$((hwm / 1024))" >&2
        rm -rf "$dir"
    done
done

ORTHANC_VERSION=$( (/usr/sbin/Orthanc --version 2>/dev/null || true) | awk 'NR == 1 {print $2}')

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo
echo "Receiving $N files of 512 KB from DCMTK storescu (+sd +r, TCP_NODELAY=1, max PDU $PDU)"
echo "on $(nproc) cores, median of $ROUNDS rounds:"
echo
echo "| server | wall time | server CPU | peak RSS | files/s |"
echo "| --- | ---: | ---: | ---: | ---: |"
for kind in "${KINDS[@]}"; do
    w=$(echo "${WALL[$kind]}" | median)
    c=$(echo "${CPU[$kind]}" | median)
    m=$(echo "${RSS[$kind]}" | median)
    name=$kind
    [[ $kind == dclient ]] && name='`dclient serve`'
    [[ $kind == storescp ]] && name='DCMTK `storescp`'
    [[ $kind == orthanc ]] && name="Orthanc $ORTHANC_VERSION"
    printf '| %s | %.2f s | %.2f s | %d MB | %.0f |\n' "$name" "$w" "$c" "$m" "$(echo "$N / $w" | bc -l)"
done
