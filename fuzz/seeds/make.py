#!/usr/bin/env python3
"""Writes the seed corpora fuzz/seeds/{label,mda,scan,text}/ from lvm2's own bytes
in tests/fixtures/lvm2 (run from anywhere; the outputs are committed, so
fuzz/run.sh never needs this script):

  label/  the first 4 KiB of PVs lvm2 wrote (label in sector 1, PV header)
  mda/    lvm2's metadata areas made small: the mda header (its size field
          shrunk to the area kept, checksum redone) and the committed text
          moved to byte 512 (as lvm2 puts the first copy); one more whose
          text wraps from the end of the area back to byte 512
  scan/   whole small device images: lvm2's label (its metadata area's
          size set to the small area's) followed by the mda/ area at 4096
  text/   lvm2's committed metadata texts, without the NUL

text/regress-* are not made here: inputs that once broke the text target's
checks (kept so that every run tries them again).
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "lvm2")
MDA_START = 4096


def calc_crc(initial, buf):
    """lvm2's calc_crc: zlib's CRC-32 register without its inversions."""
    return ~zlib.crc32(buf, ~initial & 0xFFFFFFFF) & 0xFFFFFFFF


def lvm_crc(buf):
    return calc_crc(0xF597A6CF, buf)


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


def committed_text(pv):
    """The committed copy in the mda at 4096 of a PV image (with its NUL)."""
    header = pv[MDA_START : MDA_START + 512]
    size = struct.unpack_from("<Q", header, 32)[0]
    offset, length = struct.unpack_from("<QQ", header, 40)
    area = pv[MDA_START : MDA_START + size]
    out = bytearray()
    for i in range(length):
        rel = offset + i
        out.append(area[rel if rel < size else rel - size + 512])
    return bytes(out)


def small_area(pv, wrap_tail=None):
    """An area holding only the header and the committed text: at 512, or,
    with wrap_tail, its first wrap_tail bytes at the area's end and the rest
    at 512."""
    header = bytearray(pv[MDA_START : MDA_START + 512])
    text = committed_text(pv)
    size = (512 + len(text) + 512 + 511) // 512 * 512
    area = bytearray(size)
    if wrap_tail is None:
        offset = 512
        area[512 : 512 + len(text)] = text
    else:
        offset = size - wrap_tail
        area[offset:] = text[:wrap_tail]
        area[512 : 512 + len(text) - wrap_tail] = text[wrap_tail:]
    struct.pack_into("<Q", header, 32, size)
    struct.pack_into("<Q", header, 40, offset)
    struct.pack_into("<I", header, 0, lvm_crc(bytes(header[4:512])))
    area[:512] = header
    return bytes(area)


def with_mda_size(first_4k, size):
    """The first 4 KiB of a PV with the label's (sector 1) metadata area
    resized to `size` bytes, CRC redone."""
    out = bytearray(first_4k)
    label = 512
    at = label + 72  # the data areas, after the uuid and device size
    for _ in range(2):  # the data list, then the metadata list
        while struct.unpack_from("<Q", out, at)[0] != 0:
            if out[at : at + 8] == struct.pack("<Q", MDA_START):
                struct.pack_into("<Q", out, at + 8, size)
            at += 16
        at += 16
    struct.pack_into("<I", out, label + 16, lvm_crc(bytes(out[label + 20 : label + 512])))
    return bytes(out)


def device(pv, area):
    return with_mda_size(pv[:MDA_START], len(area)) + area


def main():
    pvs = {
        "vgone": fixture("vgone-pv0-mda.bin"),
        "vgall": fixture("vgall-pv-b-mda.bin"),
        "vgnested": fixture("vgnested-pv0-mda.bin"),
        "vgwrap": fixture("vgwrap-pv0-mda.bin"),
    }
    fresh = fixture("pv-fresh-8k.bin")

    write("label", "pv-fresh", fresh[:4096])
    for name, pv in pvs.items():
        write("label", name, pv[:4096])

    # A fresh PV's header: no metadata yet (area cut to 4 KiB, size to match).
    header = bytearray(fresh[MDA_START : MDA_START + 512])
    struct.pack_into("<Q", header, 32, 4096)
    struct.pack_into("<I", header, 0, lvm_crc(bytes(header[4:512])))
    write("mda", "pv-fresh", bytes(header) + bytes(4096 - 512))
    for name, pv in pvs.items():
        write("mda", name, small_area(pv))
    write("mda", "vgall-wrapped", small_area(pvs["vgall"], wrap_tail=1024))

    write("scan", "pv-fresh", device(fresh, bytes(header) + bytes(4096 - 512)))
    for name, pv in pvs.items():
        write("scan", name, device(pv, small_area(pv)))
    write("scan", "vgall-wrapped", device(pvs["vgall"], small_area(pvs["vgall"], wrap_tail=1024)))

    for name, pv in pvs.items():
        text = committed_text(pv)
        assert text.endswith(b"\0")
        write("text", name + ".vg", text[:-1])


if __name__ == "__main__":
    main()
