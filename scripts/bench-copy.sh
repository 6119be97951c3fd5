#!/usr/bin/env bash
# `dclient copy` benchmark: PACS -> PACS by C-MOVE against DCMTK movescu, by C-GET through us
# against getscu + storescu, folder -> PACS against plain `dclient send`, and the memory and
# first C-STORE of a folder of many small files. Needs DCMTK, python3 with pydicom, GNU time
# (.ci/run installs the peers). Not part of `cargo test`.
#
#   scripts/bench-copy.sh [--rounds N] [--sets move,get,send,scale] [--scale-files 10000,100000] [--dir DIR]
#
# Generated data is kept in DIR (default /tmp/dclient-bench-copy) between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p dclient-cli --bin dclient -p dclient-synth --example synth
exec python3 scripts/bench-copy.py \
    --dclient "$PWD/target/release/dclient" \
    --synth "$PWD/target/release/examples/synth" "$@"
