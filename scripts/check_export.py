#!/usr/bin/env python3
"""Checks a `wick` preference export loads with Hugging Face `datasets` as trainers load it.

    python3 scripts/check_export.py FORMAT FILE EXPECTED_ROWS
    python3 scripts/check_export.py folder DIR train:N,validation:M

FORMAT is dpo, dpo-chat, openai-dpo, sft, labels, spacy, prompt-completion or alpaca. Needs
`pip install datasets` (and `spacy` for the spacy format, whose rows are also turned into spaCy
Docs with `Doc.char_span`, as a spaCy training script would). Prints one OK line, or the first
problem on stderr and exits 1.
"""
import shutil
import sys
import tempfile

# Columns each format must have; openai-dpo must have nothing else (OpenAI refuses extra keys).
REQUIRED = {
    "dpo": {"prompt", "chosen", "rejected"},
    "dpo-chat": {"prompt", "chosen", "rejected"},
    "openai-dpo": {"input", "preferred_output", "non_preferred_output"},
    "sft": {"messages"},
    # Label exports of classification and NER projects.
    "labels": {"id", "text", "source", "annotators", "agreement"},
    "spacy": {"text", "spans"},
    "prompt-completion": {"prompt", "completion"},
    "alpaca": {"instruction", "input", "output"},
}
ROLES = {"system", "user", "assistant"}


def fail(msg):
    print(f"check_export: {msg}", file=sys.stderr)
    sys.exit(1)


def text(v, where):
    if not isinstance(v, str) or not v:
        fail(f"{where}: expected a non-empty string, got {v!r}")


def messages(v, where, only=None):
    """A list of {role, content}; `only` is the one role allowed, if any."""
    if not isinstance(v, list) or not v:
        fail(f"{where}: expected a non-empty list of messages, got {v!r}")
    for i, m in enumerate(v):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            fail(f"{where}[{i}]: expected {{role, content}}, got {m!r}")
        if m["role"] not in ({only} if only else ROLES):
            fail(f"{where}[{i}].role: unexpected {m['role']!r}")
        text(m["content"], f"{where}[{i}].content")


def check_row(fmt, row, n):
    if fmt == "dpo":
        for k in ("prompt", "chosen", "rejected"):
            text(row[k], f"row {n}: {k}")
    elif fmt == "dpo-chat":
        messages(row["prompt"], f"row {n}: prompt")
        for k in ("chosen", "rejected"):
            messages(row[k], f"row {n}: {k}", only="assistant")
            if len(row[k]) != 1:
                fail(f"row {n}: {k}: expected one assistant message")
    elif fmt == "openai-dpo":
        if not isinstance(row["input"], dict) or set(row["input"]) != {"messages"}:
            fail(f"row {n}: input: expected {{messages}}, got {row['input']!r}")
        messages(row["input"]["messages"], f"row {n}: input.messages")
        for k in ("preferred_output", "non_preferred_output"):
            messages(row[k], f"row {n}: {k}", only="assistant")
            if len(row[k]) != 1:
                fail(f"row {n}: {k}: expected one assistant message")
    elif fmt == "labels":
        text(row["text"], f"row {n}: text")
        if not isinstance(row.get("label"), str) and not isinstance(row.get("entities"), list):
            fail(f"row {n}: expected a label or a list of entities")
    elif fmt == "spacy":
        text(row["text"], f"row {n}: text")
        for s in row["spans"]:
            if not (0 <= s["start"] < s["end"] <= len(row["text"])):
                fail(f"row {n}: span {s} is not inside the text")
    elif fmt in ("prompt-completion", "alpaca"):
        for k in REQUIRED[fmt]:
            text(row[k], f"row {n}: {k}")
    elif fmt == "sft":
        messages(row["messages"], f"row {n}: messages")
        if row["messages"][-1]["role"] != "assistant":
            fail(f"row {n}: messages: the last one must be the assistant's")


def spacy_docs(ds):
    """Each row as a spaCy Doc: every span must align with spaCy's tokens and cover the same text,
    and the Docs must serialize as a DocBin (what `spacy train` reads)."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docs = []
    for n, row in enumerate(ds, 1):
        doc = nlp.make_doc(row["text"])
        spans = []
        for s in row["spans"]:
            span = doc.char_span(s["start"], s["end"], label=s["label"], alignment_mode="strict")
            if span is None:
                fail(f"row {n}: span {s} does not align with spaCy's tokens of {row['text']!r}")
            if span.text != row["text"][s["start"]:s["end"]]:
                fail(f"row {n}: span {s} covers {span.text!r}")
            spans.append(span)
        doc.ents = spans
        docs.append(doc)
    back = list(DocBin(docs=docs).from_bytes(DocBin(docs=docs).to_bytes()).get_docs(nlp.vocab))
    if [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in back] != [
        [(s["start"], s["end"], s["label"]) for s in row["spans"]] for row in ds
    ]:
        fail("the spans changed through a spaCy DocBin")


def dataset_dir(path, expected):
    """A folder with an export's files and its README.md card loads as one dataset whose splits
    come from the card's front matter. `expected` is like "train:3,validation:1"."""
    from datasets import load_dataset

    want = {k: int(v) for k, v in (p.split(":") for p in expected.split(","))}
    cache = tempfile.mkdtemp(prefix="check_export_")
    try:
        dd = load_dataset(path, cache_dir=cache)
        got = {k: len(v) for k, v in dd.items()}
        if got != want:
            fail(f"splits {got}, expected {want}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"OK dataset folder {path}: {got}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "folder":
        return dataset_dir(sys.argv[2], sys.argv[3])
    if len(sys.argv) != 4 or sys.argv[1] not in REQUIRED or not sys.argv[3].isdigit():
        fail(f"usage: check_export.py {{{','.join(REQUIRED)}}} FILE EXPECTED_ROWS")
    fmt, path, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from datasets import load_dataset

    # A fresh cache, so a stale one from an earlier run of the same file cannot answer.
    cache = tempfile.mkdtemp(prefix="check_export_")
    try:
        ds = load_dataset("json", data_files=path, split="train", cache_dir=cache)
        cols = set(ds.column_names)
        if not REQUIRED[fmt] <= cols:
            fail(f"missing columns {sorted(REQUIRED[fmt] - cols)} (has {sorted(cols)})")
        if fmt == "openai-dpo" and cols != REQUIRED[fmt]:
            fail(f"openai-dpo has extra columns {sorted(cols - REQUIRED[fmt])}")
        if len(ds) != expected:
            fail(f"expected {expected} rows, got {len(ds)}")
        for n, row in enumerate(ds, 1):
            check_row(fmt, row, n)
        if fmt == "spacy":
            spacy_docs(ds)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"OK {fmt} {path}: {len(ds)} rows, columns {', '.join(ds.column_names)}")


if __name__ == "__main__":
    main()
