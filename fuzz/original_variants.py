#!/usr/bin/env python3
"""Derives the two original-TinyGPT layouts tinygpt reads but does not write from a v2 file it
wrote (docs/FORMAT.md, "Reading v1 and v2"): a v1 file (no manifest: the reader rebuilds it from
the config) and a v2 inferenceFP16 file (weights only, as fp16, sliced by floatOffset).

Usage: original_variants.py IN_V2 OUT_V1 OUT_V2_FP16"""
import json
import struct
import sys


def read_v2(path):
    data = open(path, "rb").read()
    magic, version, header_len = struct.unpack_from("<4sII", data, 0)
    assert magic == b"TGPT" and version == 2, "expected a v2 .tinygpt file"
    header = json.loads(data[12:12 + header_len])
    step = struct.unpack_from("<i", data, 12 + header_len)[0]
    return header, step, data[16 + header_len:]


def write(path, version, header, step, body):
    text = json.dumps(header).encode()
    with open(path, "wb") as out:
        out.write(struct.pack("<4sII", b"TGPT", version, len(text)) + text + struct.pack("<i", step) + body)


def main(v2_path, v1_path, fp16_path):
    header, step, body = read_v2(v2_path)
    v1 = {k: v for k, v in header.items() if k not in ("manifest", "stateByteLength")}
    write(v1_path, 1, v1, step, body)

    # trainingFP32 body: weight, m, v per manifest entry; keep the weights, as fp16.
    weights, offset, at = [], 0, 0
    manifest = []
    for entry in header["manifest"]:
        count = 1
        for dim in entry["shape"]:
            count *= dim
        values = struct.unpack_from("<%df" % count, body, at)
        at += 12 * count
        weights.append(struct.pack("<%de" % count, *values))
        manifest.append({"name": entry["name"], "shape": entry["shape"], "floatOffset": offset})
        offset += count
    fp16 = dict(header, manifest=manifest, weightDtype="fp16", includesOptimizerState=False)
    fp16.pop("stateByteLength", None)
    write(fp16_path, 2, fp16, step, b"".join(weights))


if __name__ == "__main__":
    main(*sys.argv[1:4])
