#!/usr/bin/env bash
# Load and fault runs against `dclient serve` (issue 16): 32 concurrent senders of three
# kinds with another SQLite writer on the index, a second serve on the same folder, SIGKILL
# of serve and of a sender, interrupted gets, full and read-only disks (tmpfs: needs root
# and mount permission), a damaged index. Prints the table the README's Robustness
# section quotes. Needs DCMTK, python3 with pydicom and pynetdicom (.ci/run installs them).
# Not part of `cargo test`. All traffic on 127.0.0.1; every wait is bounded.
#
#   scripts/faults.sh [--files N] [--senders N] [--runs load,second,kill9,sender,get-kill,diskfull,corrupt]
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in /usr/bin/storescu mount umount; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
cargo build --release --locked -q -p dclient-cli --bin dclient
exec python3 scripts/faults.py --dclient "$PWD/target/release/dclient" "$@"
