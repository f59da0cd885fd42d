"""Build the shipped WordNet subset ``data/wordnet/`` from WordNet 3.0's ``data.noun``.

``python -m ftnotes.text.wordnet_build [--source PATH] [--out DIR] [--check]``

WordNet (Miller 1995; Fellbaum 1998) files every noun synset under one of 25 lexicographer
categories (``noun.act``, ``noun.animal``, ...; lexnames(5WN)). A synset's gloss is its
definition followed by examples (``"a member of the genus Canis...; \\"the dog barked\\""``). The
subset keeps, for :data:`CATEGORIES`, a fixed number of synsets per category with their first
definition (examples dropped) and lemma words, each in one fixed split:

* ``nouns.tsv``: ``train`` / ``validation`` / ``test`` (the course's public splits);
* ``hidden.tsv``: ``hidden_live`` / ``hidden_final``, the two hidden boards of the contest task
  (a separate file so that a grader can keep it out of a graded notebook's reach);
* ``pairs.tsv``: held-out synset pairs (none of their synsets is in the two files above), each a
  synset with its direct hypernym (related) or with another synset of the same category that
  shares no hypernym with it (unrelated), for the forgetting measurement of notebook 10;
* ``LICENSE`` (WordNet 3.0's license, which asks that its notice travel with every copy) and
  ``manifest.json`` (source sha256, sizes, the command, each file's sha256).

Which synsets are kept is decided by sha256 of a salted offset, not by a random generator, so the
same ``data.noun`` gives the same bytes with any Python, numpy or platform. Definitions that occur
more than once among the nouns (ambiguous by construction) and those under three words are left
out. Debian's ``wordnet-base`` installs ``data.noun`` at :data:`DEFAULT_SOURCE`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from ftnotes.text.wordnet import (
    CATEGORIES,
    FILES,
    HIDDEN_SPLITS,
    PUBLIC_SPLITS,
    SPLIT_SIZES,
    WORDNET_DIR,
)
from ftnotes.utils import atomic_write

DEFAULT_SOURCE = Path("/usr/share/wordnet/data.noun")
DEFAULT_LICENSE = Path("/usr/share/doc/wordnet-base/copyright")
COMMAND = "python -m ftnotes.text.wordnet_build"
SALT = "ftnotes-wordnet-v1"
PAIRS_PER_CATEGORY = 40  # related pairs per category, and as many unrelated ones
MIN_WORDS = 3
# lexnames(5WN): the lexicographer file numbers of the noun categories
LEXNAMES = {
    3: "Tops", 4: "act", 5: "animal", 6: "artifact", 7: "attribute", 8: "body", 9: "cognition",
    10: "communication", 11: "event", 12: "feeling", 13: "food", 14: "group", 15: "location",
    16: "motive", 17: "object", 18: "person", 19: "phenomenon", 20: "plant", 21: "possession",
    22: "process", 23: "quantity", 24: "relation", 25: "shape", 26: "state", 27: "substance",
    28: "time",
}  # fmt: skip
HEADER = "offset\tcategory\tsplit\tlemmas\tdefinition\n"
PAIRS_HEADER = "category\trelated\toffset_a\toffset_b\tdefinition_a\tdefinition_b\n"
LICENSE_NOTICE = """\
The files in this folder are derived from WordNet 3.0 (Princeton University): the first
definition of some noun synsets, their lemma words, lexicographer category and synset offset,
selected by ftnotes/text/wordnet_build.py. WordNet's license asks that the following notice
appear on all copies, including modifications.

"""


def parse_noun_line(line: str) -> dict:
    """One synset of ``data.noun`` (wndb(5WN)): offset, category, lemmas, hypernyms, definition."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    offset, lex = fields[0], int(fields[1])
    n_words = int(fields[3], 16)
    words = fields[4 : 4 + 2 * n_words : 2]
    at = 4 + 2 * n_words
    n_ptrs = int(fields[at])
    ptrs = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(n_ptrs)]
    hypernyms = [off for sym, off, pos, _ in ptrs if sym in ("@", "@i") and pos == "n"]
    definition = " ".join(gloss.split(";")[0].split())  # first clause, whitespace normalised
    return {
        "offset": offset,
        "category": LEXNAMES[lex],
        "lemmas": ", ".join(w.replace("_", " ") for w in words),
        "hypernyms": hypernyms,
        "definition": definition,
    }


def read_synsets(source) -> dict[str, dict]:
    """Every noun synset of ``source`` by offset (license header lines skipped)."""
    synsets = {}
    with open(source, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("  "):  # the license header is indented by two spaces
                s = parse_noun_line(line.rstrip("\n"))
                synsets[s["offset"]] = s
    return synsets


def _rank(offset: str) -> str:
    return hashlib.sha256(f"{SALT}:{offset}".encode()).hexdigest()


def _eligible(synsets: dict[str, dict]) -> dict[str, list[str]]:
    """Per category, the offsets whose definition is unique and long enough, in rank order."""
    counts = Counter(s["definition"] for s in synsets.values())
    by_cat = defaultdict(list)
    for off, s in synsets.items():
        d = s["definition"]
        if counts[d] == 1 and len(d.split()) >= MIN_WORDS and d[0] != '"':
            by_cat[s["category"]].append(off)
    return {c: sorted(offs, key=_rank) for c, offs in by_cat.items()}


def select(synsets: dict[str, dict]) -> tuple[list[tuple], set[str]]:
    """(rows, used offsets): the first ranked synsets of each category, split by SPLIT_SIZES."""
    eligible, rows, used = _eligible(synsets), [], set()
    for cat in CATEGORIES:
        offs = iter(eligible[cat])
        for split, size in SPLIT_SIZES.items():
            chosen = [next(offs) for _ in range(size)]
            rows += [(cat, split, off) for off in sorted(chosen)]
            used.update(chosen)
    return rows, used


def _akin(synsets, a: str, b: str, kin: set[str]) -> bool:
    """Whether ``b`` is ``a``'s hypernym, hyponym or sibling (``kin``: ``a``'s hypernyms)."""
    hyper_b = set(synsets[b]["hypernyms"])
    return bool(kin & ({b} | hyper_b)) or a in hyper_b


def make_pairs(synsets: dict[str, dict], used: set[str]) -> list[tuple]:
    """Held-out pairs per category: a synset with its direct hypernym (related, 1) and a synset
    with a ranked same-category synset that is neither its hypernym, hyponym nor sibling (0)."""
    eligible = _eligible(synsets)
    pairs = []
    for cat in CATEGORIES:
        free = [o for o in eligible[cat] if o not in used]
        free_set = set(free)
        taken: set[str] = set()
        related = []
        for off in free:
            hyper = [h for h in synsets[off]["hypernyms"] if h in free_set and h not in taken]
            if off not in taken and hyper:
                related.append((off, hyper[0]))
                taken.update((off, hyper[0]))
            if len(related) == PAIRS_PER_CATEGORY:
                break
        pool = iter(o for o in free if o not in taken)
        unrelated = []
        for a, _ in related:
            kin = set(synsets[a]["hypernyms"])
            b = next((o for o in pool if not _akin(synsets, a, o, kin)), None)
            if b is None:  # a small category (feeling) runs out: keep the pairs balanced
                related = related[: len(unrelated)]
                break
            unrelated.append((a, b))
        pairs += [(cat, 0, a, b) for a, b in unrelated]
        pairs += [(cat, 1, a, h) for a, h in related]
    return pairs


def _check_field(value: str) -> str:
    if "\t" in value or "\n" in value:
        raise ValueError(f"field {value!r} holds a tab or newline; the TSV format cannot hold it")
    return value


def render(synsets, rows, pairs, license_text: str) -> dict[str, str]:
    """The text of every file but the manifest (file name -> text)."""
    def row_text(cat, split, off):
        s = synsets[off]
        return "\t".join(_check_field(v) for v in (off, cat, split, s["lemmas"], s["definition"]))

    public = [row_text(*r) for r in rows if r[1] in PUBLIC_SPLITS]
    hidden = [row_text(*r) for r in rows if r[1] in HIDDEN_SPLITS]
    pair_lines = [
        "\t".join((cat, str(rel), a, b, synsets[a]["definition"], synsets[b]["definition"]))
        for cat, rel, a, b in pairs
    ]
    return {
        FILES["public"]: HEADER + "".join(line + "\n" for line in public),
        FILES["hidden"]: HEADER + "".join(line + "\n" for line in hidden),
        FILES["pairs"]: PAIRS_HEADER + "".join(line + "\n" for line in pair_lines),
        FILES["license"]: LICENSE_NOTICE + license_text,
    }


def manifest(texts: dict[str, str], source_sha: str) -> dict:
    files = {name: {"sha256": hashlib.sha256(t.encode()).hexdigest(),
                    "rows": t.count("\n") - 1 if name.endswith(".tsv") else None}
             for name, t in sorted(texts.items())}  # fmt: skip
    return {
        "what": "WordNet 3.0 noun definitions by lexicographer category (ftnotes subset)",
        "source": {"file": "data.noun", "sha256": source_sha,
                   "package": "Debian wordnet-base 1:3.0 (WordNet 3.0)"},
        "license": "WordNet 3.0 license (Princeton University), notice in LICENSE",
        "command": COMMAND,
        "categories": list(CATEGORIES),
        "split_sizes_per_category": dict(SPLIT_SIZES),
        "pairs_per_category": f"{PAIRS_PER_CATEGORY} related and as many unrelated, fewer "
                              "where a category runs out of held-out synsets (feeling: 2 + 2)",
        "selection": f"sha256('{SALT}:' + offset) order among unique definitions "
                     f">= {MIN_WORDS} words",
        "files": files,
    }  # fmt: skip


def build(source=DEFAULT_SOURCE, license_path=DEFAULT_LICENSE) -> dict[str, str]:
    """Every file of the subset (name -> text, the manifest included), built in memory."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(
            f"source {source} is missing: install Debian's wordnet-base (apt-get install "
            "wordnet-base) or pass --source with WordNet 3.0's data.noun")
    raw = source.read_bytes()
    synsets = read_synsets(source)
    rows, used = select(synsets)
    license_text = _license_text(Path(license_path))
    texts = render(synsets, rows, make_pairs(synsets, used), license_text)
    meta = manifest(texts, hashlib.sha256(raw).hexdigest())
    texts[FILES["manifest"]] = json.dumps(meta, indent=2) + "\n"
    return texts


def _license_text(path: Path) -> str:
    """WordNet's license paragraph from Debian's copyright file (the Files: * stanza)."""
    text = path.read_text(encoding="utf-8")
    stanza = text.split("\nFiles: debian/*")[0]
    body = stanza.split("License: WordNet3.0\n", 1)[1]
    lines = [line[1:] if line.startswith(" ") else line for line in body.splitlines()]
    return "\n".join("" if line == "." else line for line in lines).strip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=str(DEFAULT_SOURCE), help="WordNet 3.0 data.noun")
    ap.add_argument("--license", default=str(DEFAULT_LICENSE), help="file holding the license")
    ap.add_argument("--out", default=str(WORDNET_DIR), help="folder to write (default: data/wordnet)")
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    args = ap.parse_args(argv)
    try:
        texts = build(args.source, args.license)
    except (FileNotFoundError, ValueError) as err:
        ap.error(str(err))
    out = Path(args.out)
    if args.check:
        differ = [n for n, t in texts.items()
                  if not (out / n).is_file() or (out / n).read_text(encoding="utf-8") != t]  # fmt: skip
        print("identical" if not differ else f"differs: {', '.join(differ)}")
        return 1 if differ else 0
    for name, text in texts.items():
        atomic_write(out / name, text)
    print(f"wrote {', '.join(sorted(texts))} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
