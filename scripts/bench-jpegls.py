"""JPEG-LS encode and decode throughput: dclient-jpegls (examples/jpegls) against CharLS as
DCMTK 3.6.7 runs it (dcmcjpls / dcmdjpls: CharLS 1.x bundled) and as GDCM 3.0.21 runs it
(gdcmconv --jpegls / --raw: the system's CharLS 2.4), on the same images and the same
codestreams.

Images (deterministic, made by `jpegls synth`): a 12-bit CT-like slice in 16-bit words, an
8-bit monochrome version of it, and an 8-bit RGB photo-like image. DCMTK codes them as it
does by default (raw mode: P = 16 for the CT, line-interleaved colour); ours codes the same
P and interleave mode, and decodes DCMTK's own codestreams.

A second table compares the codecs alone, in process, when the Python package pyjpegls
(CharLS 2.4 as a library; `pip install pyjpegls`, optional) is there: CharLS's CPU time per
call from time.process_time(), ours as (CPU of 1 + R runs - CPU of 1 run) / R of the example
under GNU time, which leaves out its start-up and file I/O.

Each side runs as a process under GNU time: DCMTK and GDCM read and write DICOM files, ours
reads and writes the raw samples and the codestream, so all include their file I/O. Throughput
is MB of uncompressed samples per second of CPU time (user + sys), the median of --rounds
runs; the wall-clock median is shown too (on a shared machine it includes waiting for a
core). Peak RSS is the largest of the runs.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import run_client  # noqa: E402

DCMCJPLS = "/usr/bin/dcmcjpls"
DCMDJPLS = "/usr/bin/dcmdjpls"
GDCMCONV = "/usr/bin/gdcmconv"

# name, synth kind, bits allocated, bits stored, samples per pixel, our P, our interleave
IMAGES = [
    ("ct12", "ct", 16, 12, 1, 16, "none"),
    ("mono8", "mono8", 8, 8, 1, 8, "none"),
    ("rgb8", "rgb", 8, 8, 3, 8, "line"),
]


def write_dicom(raw, path, size, ba, bs, spp):
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "2.25.4242"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, "2.25.4242"
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = "RGB" if spp == 3 else "MONOCHROME2"
    if spp == 3:
        ds.PlanarConfiguration = 0
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = ba, bs, bs - 1, 0
    with open(raw, "rb") as fh:
        ds.PixelData = fh.read()
    ds.save_as(path, enforce_file_format=True)


def codestream(path, out):
    """The single frame's codestream of an encapsulated DICOM file."""
    import pydicom
    from pydicom.encaps import generate_fragmented_frames

    ds = pydicom.dcmread(path)
    with open(out, "wb") as fh:
        fh.write(b"".join(next(generate_fragmented_frames(ds.PixelData, number_of_frames=1))))


def measure(args, rounds):
    runs = [run_client(args) for _ in range(rounds)]
    if any(r[3] != 0 for r in runs):
        sys.exit(f"failed: {' '.join(args)}")
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            max(r[2] for r in runs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jpegls", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", type=int, default=4096, help="width = height in pixels")
    ap.add_argument("--dir", default="/tmp/dclient-bench-jpegls")
    a = ap.parse_args()
    for tool in (DCMCJPLS, DCMDJPLS, GDCMCONV, "/usr/bin/time"):
        if not os.access(tool, os.X_OK):
            sys.exit(f"missing {tool}")
    os.makedirs(a.dir, exist_ok=True)
    print(f"{a.size}x{a.size}, {a.rounds} rounds; MB/s of samples per CPU second, "
          f"wall-clock MB/s in brackets; x = ours / theirs (CPU)")
    print(f"{'image':<6} {'op':<6} {'DCMTK (CharLS 1)':>20} {'GDCM (CharLS 2.4)':>20} "
          f"{'dclient-jpegls':>20} {'x DCMTK':>7} {'x GDCM':>7}  peak RSS MiB D/G/ours")
    for name, kind, ba, bs, spp, bits, ilv in IMAGES:
        d = lambda ext: os.path.join(a.dir, f"{name}.{ext}")  # noqa: E731
        subprocess.run([a.jpegls, "synth", kind, str(a.size), str(a.size), d("raw")], check=True)
        raw_mb = os.path.getsize(d("raw")) / 1e6
        write_dicom(d("raw"), d("dcm"), a.size, ba, bs, spp)
        # Encode: each tool's default (lossless); ours with DCMTK's P and ILV.
        dcmtk = measure([DCMCJPLS, d("dcm"), d("charls.dcm")], a.rounds)
        gdcm = measure([GDCMCONV, "--jpegls", d("dcm"), d("gdcm.dcm")], a.rounds)
        ours = measure([a.jpegls, "encode", d("raw"), d("jls"), str(a.size), str(a.size),
                        str(bits), str(spp), ilv, "0"], a.rounds)
        codestream(d("charls.dcm"), d("charls.jls"))
        report(name, "encode", raw_mb, dcmtk, gdcm, ours)
        print(f"{'':<14}compression ratio: DCMTK {raw_mb * 1e6 / os.path.getsize(d('charls.jls')):.3f}, "
              f"ours {raw_mb * 1e6 / os.path.getsize(d('jls')):.3f}")
        # Decode one codestream, DCMTK's, with all three.
        dcmtk = measure([DCMDJPLS, d("charls.dcm"), d("charls-dec.dcm")], a.rounds)
        gdcm = measure([GDCMCONV, "--raw", d("charls.dcm"), d("gdcm-dec.dcm")], a.rounds)
        ours = measure([a.jpegls, "decode", d("charls.jls"), d("dec.raw")], a.rounds)
        with open(d("raw"), "rb") as x, open(d("dec.raw"), "rb") as y:
            if x.read() != y.read():
                sys.exit(f"{name}: our decoding of CharLS's stream differs from the original")
        report(name, "decode", raw_mb, dcmtk, gdcm, ours)
    in_process(a, IMAGES)


def in_process(a, images):
    """Codec-only CPU time per call: CharLS 2.4 (pyjpegls) and ours, on the same streams."""
    try:
        import jpeg_ls
        import numpy as np
    except ImportError:
        print("\n(no in-process comparison: pip install pyjpegls for CharLS 2.4 as a library)")
        return
    reps = max(a.rounds, 3)
    print(f"\nin process, codec only (MB/s of samples per CPU second, median of {reps}):")
    print(f"{'image':<6} {'op':<6} {'CharLS 2.4':>11} {'ours':>8} {'x':>6}")
    for name, _, _, _, spp, bits, ilv in images:
        d = lambda ext: os.path.join(a.dir, f"{name}.{ext}")  # noqa: E731
        mb = os.path.getsize(d("raw")) / 1e6
        cs = np.fromfile(d("charls.jls"), dtype=np.uint8)
        times = []
        for _ in range(reps):
            t = time.process_time()
            arr = jpeg_ls.decode(cs)
            times.append(time.process_time() - t)
        charls_dec = mb / statistics.median(times)
        ours_dec = mb / ours_per_call(a, reps, ["decode", d("charls.jls"), d("dec.raw")])
        print(f"{name:<6} {'decode':<6} {charls_dec:11.1f} {ours_dec:8.1f} {ours_dec / charls_dec:6.2f}")
        if spp == 1:
            # (pyjpegls's encode picks its own interleave mode for colour: grey only.)
            times = []
            for _ in range(reps):
                t = time.process_time()
                jpeg_ls.encode(arr)
                times.append(time.process_time() - t)
            charls_enc = mb / statistics.median(times)
            ours_enc = mb / ours_per_call(a, reps, ["encode", d("raw"), d("jls"), str(a.size),
                                                    str(a.size), str(bits), str(spp), ilv, "0"])
            print(f"{name:<6} {'encode':<6} {charls_enc:11.1f} {ours_enc:8.1f} "
                  f"{ours_enc / charls_enc:6.2f}")


def ours_per_call(a, reps, args):
    """CPU seconds of one codec call of the example: (1 + reps runs - 1 run) / reps."""
    one = statistics.median(run_client([a.jpegls] + args + ["1"])[1] for _ in range(3))
    many = statistics.median(run_client([a.jpegls] + args + [str(1 + reps)])[1] for _ in range(3))
    return max(many - one, 1e-3) / reps


def report(name, op, mb, dcmtk, gdcm, ours):
    cpu = lambda r: mb / max(r[1], 1e-3)  # noqa: E731
    cell = lambda r: f"{cpu(r):6.1f} ({mb / r[0]:5.1f})"  # noqa: E731
    print(f"{name:<6} {op:<6} {cell(dcmtk):>20} {cell(gdcm):>20} {cell(ours):>20} "
          f"{cpu(ours) / cpu(dcmtk):7.2f} {cpu(ours) / cpu(gdcm):7.2f}  "
          f"{dcmtk[2]:.0f}/{gdcm[2]:.0f}/{ours[2]:.0f}")


if __name__ == "__main__":
    main()
