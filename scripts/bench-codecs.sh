#!/usr/bin/env bash
# Compressed objects: dclient send (decoding, or encoding with --transfer-syntax) against
# the pipeline a user scripts today (gdcmconv --raw / dcmdjpls / dcmdrle of each file, then
# DCMTK storescu), into DCMTK storescp on loopback, and peak RSS for large multi-frame
# objects. Needs DCMTK, GDCM (gdcmconv), python3, GNU time. Not part of `cargo test`.
#
#   scripts/bench-codecs.sh [--rounds N] [--parts decode,encode,memory] [--dir DIR]
#
# Generated data (about 2.5 GB) is kept in DIR (default /tmp/dclient-bench-codecs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p dclient-cli --bin dclient -p dclient-synth --example synth
exec python3 scripts/bench-codecs.py \
    --dclient "$PWD/target/release/dclient" \
    --synth "$PWD/target/release/examples/synth" "$@"
