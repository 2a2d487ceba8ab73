#!/usr/bin/env python3
"""gen_corpus.py: writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<name>/).

usage: gen_corpus.py [NMPERM] [--out DIR]
Deterministic (fixed seeds): running it again gives the same bytes. Seeds are small on purpose
(every byte is a place to mutate): tiny checkpoints of every preset built with tests/gen_ckpt.py's
Writer, .npy files of every dtype, order and header version the readers take, a few files each
reader must refuse, and plans and reports. With NMPERM (a built nmperm), the plans and reports
are the ones 'nmperm plan' and 'nmperm permute --report' print for the tiny checkpoints, so they
follow the current format; without it only the hand-written plans are made.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import gen_ckpt  # noqa: E402


def put(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- .npy

def npy(descr, shape, payload, fortran=False, version=1, pad=True):
    text = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False",
        "".join("%d," % d for d in shape) if len(shape) == 1 else ", ".join(map(str, shape)))
    lenfmt, pre = ("<H", 10) if version == 1 else ("<I", 12)
    if pad:
        text += " " * (-(pre + len(text) + 1) % 64)
    text += "\n"
    return (b"\x93NUMPY" + bytes([version, 0]) + struct.pack(lenfmt, len(text)) + text.encode() +
            payload)


def npy_corpus(out):
    f32 = struct.pack("<12f", *[(-1) ** k * 0.25 * k for k in range(12)])
    put(out, "f32_3x4.npy", npy("<f4", [3, 4], f32))
    put(out, "f32_3x4_fortran.npy", npy("<f4", [3, 4], f32, fortran=True))
    put(out, "f64_2x4.npy", npy("<f8", [2, 4], struct.pack("<8d", *range(8))))
    put(out, "f16_2x4.npy", npy("<f2", [2, 4], struct.pack("<8e", *[0.5 * k for k in range(8)])))
    put(out, "f32_big_endian_2x2.npy", npy(">f4", [2, 2], struct.pack(">4f", 1, 2, 3, 4)))
    put(out, "f32_v2_2x2.npy", npy("<f4", [2, 2], struct.pack("<4f", 1, 2, 3, 4), version=2))
    put(out, "f32_0x4.npy", npy("<f4", [0, 4], b""))
    put(out, "f32_vector_8.npy", npy("<f4", [8], struct.pack("<8f", *range(8))))
    put(out, "f64_vector_4.npy", npy("<f8", [4], struct.pack("<4d", 4, 3, 2, 1)))
    put(out, "i64_perm_8.npy", npy("<i8", [8], struct.pack("<8q", 3, 1, 0, 2, 7, 6, 5, 4)))
    put(out, "i32_perm_4.npy", npy("<i4", [4], struct.pack("<4i", 1, 0, 3, 2)))
    put(out, "u1_perm_4.npy", npy("|u1", [4], bytes([2, 3, 0, 1])))
    put(out, "u4_perm_4_unpadded.npy", npy("<u4", [4], struct.pack("<4I", 0, 1, 2, 3),
                                              pad=False))
    # refused ones: the error paths are code too
    put(out, "bad_3d.npy", npy("<f4", [1, 2, 2], struct.pack("<4f", 1, 2, 3, 4)))
    put(out, "bad_object.npy", npy("|O", [2], b"\0" * 16))
    put(out, "bad_nan.npy", npy("<f4", [1, 4], struct.pack("<4f", 1, float("nan"), 3, 4)))
    put(out, "bad_f64_range.npy", npy("<f8", [1, 4], struct.pack("<4d", 1, 1e300, 3, 4)))
    put(out, "bad_truncated.npy", npy("<f4", [3, 4], f32)[:-5])
    put(out, "bad_version.npy", b"\x93NUMPY\x04\x00" + npy("<f4", [1], b"\0" * 4)[8:])
    # two real instances (smallest ones, from instances/)
    for name in ("absnormal_16x8.npy", "uniform_16x8.npy"):
        shutil.copy(os.path.join(ROOT, "instances", name), os.path.join(out, name))


# -------------------------------------------------------- safetensors

def tiny_bert(w, hidden=8, inter=16, layers=1):
    w.add("embeddings.word_embeddings.weight", [4, hidden])
    w.add("embeddings.position_embeddings.weight", [2, hidden], "F16")
    w.add("embeddings.LayerNorm.weight", [hidden], kind="positive")
    w.add("embeddings.LayerNorm.bias", [hidden])
    for n in range(layers):
        p = "encoder.layer.%d." % n
        for s in ("query", "key", "value"):
            w.add(p + "attention.self.%s.weight" % s, [hidden, hidden])
            w.add(p + "attention.self.%s.bias" % s, [hidden])
        w.add(p + "attention.output.dense.weight", [hidden, hidden])
        w.add(p + "attention.output.dense.bias", [hidden])
        w.add(p + "attention.output.LayerNorm.weight", [hidden], kind="positive")
        w.add(p + "attention.output.LayerNorm.bias", [hidden])
        w.add(p + "intermediate.dense.weight", [inter, hidden], "BF16")
        w.add(p + "intermediate.dense.bias", [inter], "BF16")
        w.add(p + "output.dense.weight", [hidden, inter], "BF16")
        w.add(p + "output.dense.bias", [hidden])
        w.add(p + "output.LayerNorm.weight", [hidden], kind="positive")
        w.add(p + "output.LayerNorm.bias", [hidden])
    w.add("pooler.dense.weight", [hidden, hidden], "F16")
    w.add("pooler.dense.bias", [hidden], "F16")


def tiny_gpt2(w, hidden=8, layers=1):
    w.add("wte.weight", [4, hidden])
    w.add("wpe.weight", [2, hidden])
    for n in range(layers):
        p = "h.%d." % n
        w.add(p + "ln_1.weight", [hidden], kind="positive")
        w.add(p + "ln_1.bias", [hidden])
        w.add(p + "attn.bias", [1, 1, 2, 2], "U8", "int")
        w.add(p + "attn.c_attn.weight", [hidden, 3 * hidden], "F16")
        w.add(p + "attn.c_attn.bias", [3 * hidden], "F16")
        w.add(p + "attn.c_proj.weight", [hidden, hidden])
        w.add(p + "attn.c_proj.bias", [hidden])
        w.add(p + "ln_2.weight", [hidden], kind="positive")
        w.add(p + "ln_2.bias", [hidden])
        w.add(p + "mlp.c_fc.weight", [hidden, 2 * hidden])
        w.add(p + "mlp.c_fc.bias", [2 * hidden])
        w.add(p + "mlp.c_proj.weight", [2 * hidden, hidden], "BF16")
        w.add(p + "mlp.c_proj.bias", [hidden])
    w.add("ln_f.weight", [hidden], kind="positive")
    w.add("ln_f.bias", [hidden])


def tiny_resnet(w):
    w.add("conv1.weight", [8, 1, 1, 1])
    for s in ("weight", "bias", "running_mean"):
        w.add("bn1." + s, [8])
    w.add("bn1.running_var", [8], kind="positive")
    w.add("bn1.num_batches_tracked", [], "I64", "int")
    p = "layer1.0."
    for k, (i, o) in enumerate([(8, 8), (8, 8), (8, 8)], 1):
        w.add(p + "conv%d.weight" % k, [o, i, 1, 1], "F16" if k == 2 else "F32")
        for s in ("weight", "bias", "running_mean"):
            w.add(p + "bn%d.%s" % (k, s), [o])
        w.add(p + "bn%d.running_var" % k, [o], kind="positive")
    w.add("fc.weight", [2, 8])
    w.add("fc.bias", [2])


def st_bytes(build, seed=1):
    w = gen_ckpt.Writer(seed)
    build(w)
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
        w.write(f.name)
        return open(f.name, "rb").read()


def raw_st(header, data=b""):
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def st_corpus(out):
    put(out, "bert.safetensors", st_bytes(tiny_bert))
    put(out, "gpt2.safetensors", st_bytes(tiny_gpt2))
    put(out, "resnet.safetensors", st_bytes(tiny_resnet))
    put(out, "llama.safetensors", st_bytes(lambda w: gen_ckpt.llama(
        w, hidden=8, inter=16, layers=3, heads=2, kv=1, vocab=2)))
    put(out, "llama_f32.safetensors", st_bytes(lambda w: gen_ckpt.llama(
        w, hidden=8, inter=8, layers=1, heads=2, kv=2, vocab=2, small=False)))
    put(out, "empty.safetensors", raw_st({}))
    put(out, "metadata_only.safetensors", raw_st({"__metadata__": {"format": "pt"}}))
    f32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    put(out, "bad_overlap.safetensors", raw_st({"a": f32, "b": f32}, b"\0" * 8))
    put(out, "bad_dtype.safetensors",
        raw_st({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8))
    put(out, "bad_size.safetensors",
        raw_st({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8))
    put(out, "bad_header_len.safetensors", struct.pack("<Q", 200_000_000) + b"{}")


# -------------------------------------------------------------- plans

def plan_corpus(out, nmperm, st_dir):
    put(out, "minimal.json", json.dumps({"spaces": []}).encode())
    handmade = {
        "arch": "custom", "nm": "2:4",
        "spaces": [{
            "name": "layer0.mlp", "size": 16, "act": "silu",
            "tensors": [
                {"tensor": "model.layers.0.mlp.up_proj.weight", "role": "producer",
                 "use": "weight", "axis": 0, "offset": 0},
                {"tensor": "model.layers.0.mlp.gate_proj.weight", "role": "producer",
                 "use": "gate", "axis": 0, "offset": 0},
                {"tensor": "model.layers.0.mlp.down_proj.weight", "role": "consumer",
                 "use": "weight", "axis": 1, "offset": 0}],
            "perm": list(range(15, -1, -1))},
            {"name": "skipped", "size": 4, "skip": "too small", "tensors": []}]}
    put(out, "handmade.json", json.dumps(handmade, indent=1).encode())
    if not nmperm:
        return
    # The format as the program writes it today, for the checkpoint the harness checks against
    # (instances/tiny_llama) and for the tiny presets.
    tiny = os.path.join(ROOT, "instances", "tiny_llama", "model.safetensors")
    runs = [("tiny_llama_plan.json", ["plan", tiny]),
            ("tiny_llama_plan_residual.json", ["plan", tiny, "--residual"])]
    for arch in ("bert", "gpt2", "resnet"):
        runs.append(("%s_plan.json" % arch,
                     ["plan", os.path.join(st_dir, "%s.safetensors" % arch), "--heads", "2"]))
    for name, args in runs:
        put(out, name, subprocess.run([nmperm] + args, check=True, capture_output=True).stdout)
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r.json")
        subprocess.run([nmperm, "permute", tiny, "-o", os.path.join(tmp, "o.safetensors"),
                        "--solver", "swap", "--time-limit", "0", "--quiet", "--report",
                        report], check=True)
        with open(report) as f:
            r = json.load(f)
        for sp in r["spaces"]:  # the one field that differs between runs
            if "stats" in sp:
                sp["stats"]["seconds"] = 0.0
        put(out, "tiny_llama_report.json", json.dumps(r, indent=1).encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nmperm", nargs="?", help="a built nmperm (for plans and reports)")
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"))
    a = ap.parse_args()
    dirs = {n: os.path.join(a.out, n) for n in ("safetensors", "npy", "plan")}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    npy_corpus(dirs["npy"])
    st_corpus(dirs["safetensors"])
    plan_corpus(dirs["plan"], a.nmperm, dirs["safetensors"])


if __name__ == "__main__":
    main()
