#!/usr/bin/env bash
# JPEG-LS codec benchmark: dclient-jpegls against CharLS (inside DCMTK's dcmcjpls /
# dcmdjpls) on the same images, side by side, medians of several runs. Needs DCMTK,
# python3 with pydicom (.ci/run installs them) and GNU time. Not part of `cargo test`.
#
#   scripts/bench-jpegls.sh [--rounds N] [--size PIXELS] [--dir DIR]
# Compares with DCMTK (CharLS 1.x) and GDCM (CharLS 2.4) too.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p dclient-jpegls --example jpegls
exec python3 scripts/bench-jpegls.py --jpegls "$PWD/target/release/examples/jpegls" "$@"
