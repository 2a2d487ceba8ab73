#!/usr/bin/env python3
"""calibrate.py: per-input-channel activation norms of every linear layer, for `nmperm permute
--activations` (Wanda / RIA saliency). numpy only.

usage: calibrate.py MODEL_DIR -o STATS.safetensors [--text FILE | --ids IDS.npy]
                    [--tokens N] [--seq L]

MODEL_DIR holds model.safetensors and config.json of a BERT encoder (model_type bert: WordPiece
with vocab.txt) or a LLaMA decoder (model_type llama/mistral: byte-level BPE with tokenizer.json).
The text (default: the license texts of /usr/share/common-licenses, real English text present on
every Debian system) is tokenized and cut into sequences of L tokens (default 128 for BERT, 256
for LLaMA) until N tokens (default 4096) are seen. --ids IDS.npy gives token ids instead: for a
LLaMA the ids as they are; for a BERT one tokenized sequence [CLS] ... [SEP] as a tokenizer
returns it (its first and last ids are the CLS and SEP wrapped around every calibration sequence,
the ids between them are the text). For each linear weight W (out x in) the output
holds a float32 vector of length `in`: ||x_j||_2, the L2 norm over all calibration tokens of the
layer's input channel j. The file's __metadata__ says {"format": "nmperm-activations",
"tokens": N, "model": ...}. See docs/activations.md.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nmp_models as nm  # noqa: E402


def tokenize(model_dir, cfg, text):
    kind = cfg.get("model_type", "")
    if kind == "bert":
        tok = nm.WordPiece(os.path.join(model_dir, "vocab.txt"), max_len=10 ** 9)
        return tok.encode(text)[1:-1], tok.vocab["[CLS]"], tok.vocab["[SEP]"]
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        model = json.load(f)["model"]
    if model.get("type") != "BPE":
        raise SystemExit("calibrate.py: %s/tokenizer.json: only byte-level BPE tokenizers are "
                         "supported (give --ids instead)" % model_dir)
    vocab = sorted(model["vocab"], key=model["vocab"].get)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return nm.ByteBPE(vocab, merges).encode(text), None, None


def calibrate(model_dir, ids, tokens, seq, cls=None, sep=None):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = nm.read_safetensors(os.path.join(model_dir, "model.safetensors"))
    rec = nm.Recorder()
    seen = 0
    for start in range(0, len(ids), seq):
        chunk = list(ids[start:start + seq])
        if seen >= tokens or len(chunk) < 2:
            break
        chunk = chunk[:tokens - seen]
        if cfg.get("model_type") == "bert":
            nm.bert_forward(w, cfg, [cls] + chunk + [sep], rec)
        else:
            nm.llama_forward(w, cfg, chunk, rec)
        seen += len(chunk)
    return rec.norms(), seen


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--text")
    ap.add_argument("--ids")
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--seq", type=int, default=0)
    a = ap.parse_args()
    with open(os.path.join(a.model_dir, "config.json")) as f:
        cfg = json.load(f)
    bert = cfg.get("model_type") == "bert"
    if bert or cfg.get("model_type") in ("llama", "mistral"):
        pass
    else:
        raise SystemExit("calibrate.py: %s/config.json: model_type %r: expected bert, llama or "
                         "mistral" % (a.model_dir, cfg.get("model_type")))
    cls = sep = None
    if a.ids:
        ids = np.load(a.ids).astype(np.int64).ravel().tolist()
        if bert:  # [CLS] text [SEP]: the text is cut into sequences, each wrapped again
            if len(ids) < 3:
                raise SystemExit("calibrate.py: %s: a BERT needs [CLS] ids... [SEP] (%d ids)"
                                 % (a.ids, len(ids)))
            cls, sep, ids = ids[0], ids[-1], ids[1:-1]
    else:
        text = open(a.text, encoding="utf-8").read() if a.text else nm.text_corpus()
        ids, cls, sep = tokenize(a.model_dir, cfg, " ".join(text.split()))
    seq = a.seq or (126 if bert else 256)
    norms, seen = calibrate(a.model_dir, ids, a.tokens, seq, cls, sep)
    nm.write_safetensors(a.output, norms, "F32",
                         {"format": "nmperm-activations", "tokens": str(seen),
                          "model": os.path.abspath(a.model_dir)})
    print("%s: %d layers, %d tokens" % (a.output, len(norms), seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
