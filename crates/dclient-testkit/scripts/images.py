"""Uncompressed test images written by pydicom (no numpy): the inputs that DCMTK's and
GDCM's encoders compress for the codec tests. Explicit VR Little Endian, Secondary Capture.

    python3 images.py OUT_DIR                 the small set (8, 12, 16 bit, signed, RGB,
                                              multi-frame, odd sizes)
    python3 images.py OUT_DIR ct N [FRAMES]   N CT-like 512x512x16 files (one of FRAMES
                                              frames when FRAMES is given), for benchmarks
"""
import math
import os
import random
import struct
import sys

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rnd = random.Random(12)


def smooth(h, w, lo, hi, phase=0.0):
    vals = []
    for y in range(h):
        for x in range(w):
            base = (math.sin(x / 7.0 + phase) + math.cos(y / 5.0 - phase)) * 0.25 + 0.5
            v = lo + base * (hi - lo) * 0.8 + rnd.gauss(0, (hi - lo) * 0.02)
            vals.append(int(round(min(max(v, lo), hi))))
    return vals


def dataset(sop_class, h, w, ba, bs, signed, pi, spp, frames):
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Codec^Test"
    ds.PatientID = "CODEC1"
    ds.StudyDate = "20240101"
    ds.Modality = "OT"
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = pi
    if spp == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = h, w
    ds.BitsAllocated = ba
    ds.BitsStored = bs
    ds.HighBit = bs - 1
    ds.PixelRepresentation = 1 if signed else 0
    return ds


def make(name, h, w, frames_vals, ba, bs, signed=False, pi="MONOCHROME2", spp=1):
    ds = dataset("1.2.840.10008.5.1.4.1.1.7", h, w, ba, bs, signed, pi, spp, len(frames_vals))
    ds.ConversionType = "WSD"
    fmt = {8: "B", 16: ("h" if signed else "H")}[ba]
    data = b"".join(struct.pack("<%d%s" % (len(v), fmt), *v) for v in frames_vals)
    if len(data) % 2:
        data += b"\0"
    ds.PixelData = data
    ds.save_as(os.path.join(out, name + ".dcm"), enforce_file_format=True)


def rgb(h, w, phase=0.0):
    r = smooth(h, w, 0, 255, phase)
    g = smooth(h, w, 0, 255, phase + 1)
    b = smooth(h, w, 0, 255, phase + 2)
    return [c for px in zip(r, g, b) for c in px]


def small():
    H, W = 48, 64
    make("mono16", H, W, [smooth(H, W, 0, 65535)], 16, 16)
    make("mono12u", H, W, [smooth(H, W, 0, 4095)], 16, 12)
    # 12-bit signed in 16 bits, sign-extended (typical CT storage)
    make("mono12s", H, W, [smooth(H, W, -2048, 2047)], 16, 12, signed=True)
    make("mono16s", H, W, [smooth(H, W, -32768, 32767)], 16, 16, signed=True)
    make("mono8", H, W, [smooth(H, W, 0, 255)], 8, 8)
    make("rgb8", H, W, [rgb(H, W)], 8, 8, pi="RGB", spp=3)
    make("mono8x3", H, W, [smooth(H, W, 0, 255, p) for p in (0, 1, 2)], 8, 8)
    make("mono12x3", H, W, [smooth(H, W, 0, 4095, p) for p in (0, 1, 2)], 16, 12)
    make("rgb8x3", H, W, [rgb(H, W, p) for p in (0, 1, 2)], 8, 8, pi="RGB", spp=3)
    # odd sizes: an odd number of pixels, rows and columns
    make("odd8", 37, 53, [smooth(37, 53, 0, 255)], 8, 8)
    make("odd16", 37, 53, [smooth(37, 53, 0, 1023)], 16, 10)


def ct(n, frames):
    """512x512 16-bit CT-like images (a disc of smooth tissue values with noise)."""
    H = W = 512
    rows = []
    for y in range(H):
        row = []
        for x in range(W):
            r = math.hypot(x - 256, y - 256)
            row.append(int(1000 + 600 * math.cos(r / 25.0) + 200 * math.sin(x / 40.0)) if r < 240 else 0)
        rows.append(row)
    base = [v for row in rows for v in row]
    noise = [rnd.randint(0, 24) for _ in range(4096)]

    def frame(k):
        vals = [v + noise[(i * 7 + k * 131) % 4096] if v else 0 for i, v in enumerate(base)]
        return struct.pack("<%dH" % len(vals), *vals)

    study = generate_uid()
    series = generate_uid()
    count = n if frames <= 1 else 1
    for i in range(count):
        nf = frames if frames > 1 else 1
        ds = dataset("1.2.840.10008.5.1.4.1.1.2", H, W, 16, 12, False, "MONOCHROME2", 1, nf)
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.Modality = "CT"
        ds.InstanceNumber = i + 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        if nf == 1:
            ds.PixelData = frame(i)
        else:
            ds.PixelData = b"".join(frame(k) for k in range(nf))
        ds.save_as(os.path.join(out, "ct%05d.dcm" % (i + 1)), enforce_file_format=True)


if len(sys.argv) > 2 and sys.argv[2] == "ct":
    ct(int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
else:
    small()
print("ok")
