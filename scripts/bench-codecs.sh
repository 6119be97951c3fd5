#!/usr/bin/env bash
# Compressed objects: dclient send (decoding, or encoding with --transfer-syntax) against
# the pipeline a user scripts today (gdcmconv --raw / dcmdjpls / dcmdrle of each file, then
# DCMTK storescu), into DCMTK storescp on loopback, and peak RSS for large multi-frame
# objects. Needs DCMTK, GDCM (gdcmconv), python3, GNU time; cmake for the JPEG-LS rows
# (a second binary built with --features charls). Not part of `cargo test`.
#
#   scripts/bench-codecs.sh [--rounds N] [--parts decode,encode,memory] [--dir DIR]
#
# Generated data (about 2.5 GB) is kept in DIR (default /tmp/dclient-bench-codecs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p dclient-cli --bin dclient -p dclient-synth --example synth
charls=()
if command -v cmake >/dev/null; then
    cargo build --release --locked -q -p dclient-cli --bin dclient --features charls \
        --target-dir target/charls
    charls=(--dclient-charls "$PWD/target/charls/release/dclient")
else
    echo "cmake not found: the JPEG-LS rows of dclient are left out" >&2
fi
exec python3 scripts/bench-codecs.py \
    --dclient "$PWD/target/release/dclient" "${charls[@]}" \
    --synth "$PWD/target/release/examples/synth" "$@"
