#!/usr/bin/env python3
r"""make_tokenizer_cases.py: golden cases for the C tokenizer tests.

Writes, under tests/fixtures/tokenizer/:
  vocab_uncased.txt, vocab_cased.txt
      two small hand-made WordPiece vocabularies (a few hundred tokens:
      specials, punctuation, letters and "##" letters without q, digits,
      some words and pieces, accented Latin, Greek, Cyrillic, CJK, kana,
      Hangul, emoji). Their special tokens sit at different ids, so no id can
      be hard-coded by accident.
  cases.tsv
      every case of CASES encoded with Hugging Face BertTokenizer against both
      vocabularies (t_tokenizer.c).
  bert_uncased_cases.tsv, sst2_dev_uncased.tsv
      only when $KD_SHARED/data is present: the single-text CASES and the
      first SST2_DEV_N sentences of SST-2 dev encoded with the real
      bert-base-uncased vocabulary (t_tokenizer_sst2.c). Only ids are stored;
      the shared data itself stays outside the repository.

cases.tsv columns (tab-separated; '#' lines are comments):
  name vocab max_len kind text_a text_b input_ids token_type_ids attention_mask tokens
vocab is "uncased", "cased" or "bert-base-uncased"; kind is "single" or
"pair"; texts use the escapes \\ \t \n \r \uXXXX \UXXXXXXXX (every character
that str.isprintable() rejects and every combining mark is escaped, so that
no editor can normalise the file); the id columns hold max_len
space-separated integers (HF's tokenizer(a, b, max_length=max_len,
truncation=True, padding="max_length")); tokens are the token strings of the
real (unpadded) positions, for diagnostics.

sst2_dev_uncased.tsv columns: dev line number (1 = header), byte length of
the sentence (to detect a different dev.tsv), input_ids without padding.

Run from the repository root (never by make check):
  /opt/hfvenv/bin/python tests/gen/make_tokenizer_cases.py
"""
import os
import sys
import tempfile
import unicodedata

import transformers
from transformers import BertTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
SHARED = os.environ.get("KD_SHARED", os.path.join(ROOT, "..", "shared"))
SST2_DEV_N = 200

# ---------------------------------------------------------------- vocabularies

ASCII_PUNCT = [chr(c) for c in list(range(33, 48)) + list(range(58, 65)) +
               list(range(91, 97)) + list(range(123, 127))]
UNICODE_PUNCT = list("«»—–…¡¿、。「」’“”‘·")
DIGITS = list("0123456789")
# 'q' is left out on purpose: any word with a q cannot be covered -> [UNK]
LOWER = [c for c in "abcdefghijklmnopqrstuvwxyz" if c != "q"]
UPPER = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c != "Q"]
GREEK = list("αβγδεζηθικλμνξοπρστυφχψως")
CJK = list("中国人日本大学我爱北京語豈") + ["\U00020000"]  # U+8C48 豈 is NFC of U+F900
KANA = ["こ", "##ん", "##に", "##ち", "##は", "テ", "##キ", "##ス", "##ト", "の"]
EMOJI = ["😀", "##😀", "👍", "🫠", "👨", "##👩", "##👧"]

WORDS = """the a an is it this that movie film good bad great not very un ##aff ##able
play ##ing ##ed ##s ##er ##ly ##est run hello world token ##izer ##ization new york
san francisco i love hate emoji long word super ##cal ##if ##rag ##il ##istic wait what
really yes no user tab separated line zero width soft hyphen bom family snowman bye
don t stop believing 2024 12 ##34 100 1 ##000 ##5 stanford sentiment treebank
charming affecting journey bleak desperate""".split()

UNCASED_EXTRA = ["cafe", "naive", "resume", "uber", "zurich", "ss", "istanbul",
                 "σισυφος", "σ", "##σ", "##ς", "мир", "привет", "ж",
                 "ᄒ", "##ᅡ", "##ᆫ", "ᄀ", "##ᅮ", "##ᆨ", "angstrom", "ǆ"]
CASED_EXTRA = ["The", "Hello", "World", "Paris", "New", "York", "I", "BERT", "GPU",
               "café", "naïve", "résumé", "Über", "Zürich", "é", "##é", "ñ", "##ñ",
               "à", "##à", "Å", "ÀÉÎÕÜ", "İstanbul", "ΣΊΣΥΦΟΣ", "Σ", "Мир", "привет",
               "한", "##국", "##어", "Ångström", "HELLO", "ẞ", "Ǆ"]


def dedup(tokens):
    seen, out = set(), []
    for t in tokens:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def make_vocab(cased):
    if cased:  # specials in another order and place than the uncased vocab
        head = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "[unused0]"]
    else:
        head = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = LOWER + (UPPER if cased else [])
    body = (ASCII_PUNCT + UNICODE_PUNCT + DIGITS + ["##" + d for d in DIGITS] +
            letters + ["##" + c for c in letters] + GREEK + ["##" + g for g in GREEK] +
            CJK + KANA + EMOJI + WORDS + (CASED_EXTRA if cased else UNCASED_EXTRA))
    return head + dedup(t for t in body if t not in head)


# ---------------------------------------------------------------------- cases

LONG_A = ("the charming movie is a very good film and the journey is really great "
          "but the bleak film is not very good")
LONG_B = "i love this movie , it is super good and the film is great"
LONG_C = " ".join(["playing"] * 20)

# (name, text_a, text_b or None, max_len)
CASES = [
    ("plain", "hello world", None, 16),
    ("capitals_punct", "Hello, World!", None, 16),
    ("wordpieces", "unaffable playing played runs supercalifragilistic", None, 24),
    ("empty", "", None, 8),
    ("whitespace_only", "   \t\n  \r\n ", None, 8),
    ("accents", "café naïve résumé Über Zürich", None, 32),
    ("combining", "cafe\u0301 nai\u0308ve A\u030angstro\u0308m", None, 32),
    ("combining_only", "\u0301\u0308 x\u0301", None, 16),
    ("cjk", "中国人 我爱北京", None, 32),
    ("cjk_in_words", "hello中国world 日本語のテキスト", None, 32),
    ("cjk_compat_nfc", "\uF900豈 x\uF900y", None, 16),
    ("cjk_ext_b", "\U00020000\U00020001 a\U00020000b", None, 16),
    ("kana_hangul", "こんにちは テキスト 한국어 한국", None, 32),
    ("control_chars", "hello\x00world\ufffd!\x07\x1b bye\x7f\x85x", None, 32),
    ("tabs_newlines", "tab\tseparated\nnew\r\nline\rend", None, 32),
    ("format_chars", "zero\u200bwidth soft\u00adhyphen \ufeffbom a\u200db", None, 32),
    ("unicode_spaces", "a\u00a0b\u2003c\u3000d\u2028e\u2029f\u202fg\u1680h", None, 32),
    ("private_use", "a\ue000b \U000F0000 c", None, 16),
    ("word_100", "a" * 100, None, 128),
    ("word_101", "a" * 101, None, 16),
    ("word_101_split_by_punct", "a" * 60 + "." + "a" * 60, None, 128),
    ("accent_word_101", "é" * 101, None, 16),
    ("combining_word_nfc", "e\u0301" * 60, None, 128),
    ("unknown_words", "quiz quick жук ☃ abc☃def 𝔘nicode", None, 32),
    ("emoji", "I love 😀😀 👍! 🫠🫠", None, 32),
    ("emoji_zwj_modifier", "👨\u200d👩\u200d👧 family 👍🏽 ❤\ufe0f", None, 32),
    ("ascii_punct", "wait... what?! (really) [yes] {no} $5 #1 @user 50% a+b=c ~x^ `x` |y|"
     " \\ back/slash _under_", None, 64),
    ("unicode_punct", "«quoted» — dash – “smart” ‘single’ ¿qué? ¡sí! 、。「大」… a·b",
     None, 64),
    ("symbols", "±×÷ ° € £ ¥ © ® ™ ∑ √", None, 32),
    ("digits", "123 45.6 1,000 2024 12345", None, 32),
    ("contractions", "Don't stop-believing, it's 2024!", None, 32),
    ("special_tokens", "[CLS] hello [SEP] world [MASK] [PAD] [UNK]", None, 32),
    ("special_glued", "hello[MASK]world [[SEP]] [PAD][UNK]", None, 32),
    ("special_lower_and_partial", "[cls] [sep] [MASK [CLS x [SE P]", None, 32),
    ("special_assembled", "[CL\x00S] x [SE\u200bP]", None, 16),
    ("case_mix", "HELLO World hElLo BERT GPU", None, 32),
    ("upper_accents", "ÀÉÎÕÜ àéîõü", None, 32),
    ("greek_sigma", "ΣΊΣΥΦΟΣ σίσυφος", None, 32),
    ("dotted_i", "İstanbul İ", None, 32),
    ("special_casing", "ẞ Ǆ ǅ ﬁ Ω Å", None, 32),
    ("cyrillic", "Мир привет МИР", None, 32),
    ("other_scripts", "مَرْحَبًا สวัสดี नमस्ते", None, 32),
    ("sst2_like", "it 's a charming and often affecting journey . ", None, 32),
    ("truncate_single", LONG_A, None, 10),
    ("truncate_single_min", LONG_A, None, 3),
    ("pad_only_specials", "", None, 2),
    ("pair_plain", "hello world", "good movie", 16),
    ("pair_exact_fit", "hello world", "good movie", 7),
    ("pair_both_long", LONG_A, LONG_B, 16),
    ("pair_first_long", LONG_A, "short", 12),
    ("pair_second_long", "short", LONG_A, 12),
    ("pair_tie_odd", "a b c d e f", "g h i j k l", 12),
    ("pair_tie_even", "a b c d e f", "g h i j k l", 11),
    ("pair_wordpieces", LONG_C, "unaffable playing", 14),
    ("pair_empty_b", "hello", "", 8),
    ("pair_empty_a", "", "hello", 8),
    ("pair_empty_both", "", "", 4),
    ("pair_min_len", "hello world", "good movie", 3),
    ("pair_unicode", "café 中国 😀", "naïve Über\tZürich", 24),
    ("pair_specials", "a [SEP] b", "[CLS]c", 16),
]


def escape(s):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable() or unicodedata.category(ch).startswith("M"):
            out.append("\\u%04x" % ord(ch) if ord(ch) <= 0xFFFF else "\\U%08x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def encode_row(tok, vocab_name, name, a, b, max_len):
    enc = tok(a, b, max_length=max_len, truncation=True, padding="max_length")
    ids, types, mask = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
    assert len(ids) == max_len, (name, vocab_name, len(ids), max_len)
    real = sum(mask)
    tokens = tok.convert_ids_to_tokens(ids[:real])
    return "\t".join([
        name, vocab_name, str(max_len), "single" if b is None else "pair",
        escape(a), "" if b is None else escape(b),
        " ".join(map(str, ids)), " ".join(map(str, types)), " ".join(map(str, mask)),
        " ".join(escape(t) for t in tokens)])


def header(what):
    return ["# %s" % what,
            "# generated by tests/gen/make_tokenizer_cases.py with transformers %s "
            "BertTokenizer, Python %s (Unicode %s)" % (
                transformers.__version__, sys.version.split()[0], unicodedata.unidata_version)]


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
    print("wrote %s (%d lines)" % (os.path.relpath(path, ROOT), len(lines)))


def quiet(tok):
    # pair truncation logs a warning on every call
    transformers.logging.set_verbosity_error()
    return tok


def main():
    os.makedirs(OUT, exist_ok=True)
    toks = {}
    for name, cased in (("uncased", False), ("cased", True)):
        path = os.path.join(OUT, "vocab_%s.txt" % name)
        write_lines(path, make_vocab(cased))
        toks[name] = quiet(BertTokenizer(path, do_lower_case=not cased))

    rows = header("tokenizer golden cases (see the script for the columns)")
    for name, a, b, max_len in CASES:
        for vocab_name in ("uncased", "cased"):
            rows.append(encode_row(toks[vocab_name], vocab_name, name, a, b, max_len))
    write_lines(os.path.join(OUT, "cases.tsv"), rows)

    vocab = os.path.join(SHARED, "data", "vocab", "bert-base-uncased-vocab.txt")
    dev = os.path.join(SHARED, "data", "glue", "SST-2", "dev.tsv")
    if not (os.path.exists(vocab) and os.path.exists(dev)):
        print("shared data not found under %s: real-vocabulary fixtures not rewritten" % SHARED)
        return
    real = quiet(BertTokenizer(vocab, do_lower_case=True))
    rows = header("CASES with the real bert-base-uncased vocabulary")
    for name, a, b, max_len in CASES:
        rows.append(encode_row(real, "bert-base-uncased", name, a, b, max_len))
    write_lines(os.path.join(OUT, "bert_uncased_cases.tsv"), rows)

    rows = header("first %d sentences of SST-2 dev.tsv, bert-base-uncased, max_len 128; "
                  "columns: line, bytes, input_ids" % SST2_DEV_N)
    with open(dev, "rb") as f:
        lines = f.read().split(b"\n")
    for lineno in range(2, 2 + SST2_DEV_N):  # line 1 is the header
        sentence = lines[lineno - 1].split(b"\t")[0]
        enc = real(sentence.decode("utf-8"), max_length=128, truncation=True)
        rows.append("%d\t%d\t%s" % (lineno, len(sentence), " ".join(map(str, enc["input_ids"]))))
    write_lines(os.path.join(OUT, "sst2_dev_uncased.tsv"), rows)


if __name__ == "__main__":
    main()
