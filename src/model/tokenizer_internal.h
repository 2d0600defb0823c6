/* tokenizer_internal.h: data shared by the tokenizer's source files (model
 * layer; not part of the public API, see include/kd/model/tokenizer.h).
 *
 *   tokenizer_vocab.c  vocab.txt reader, hash tables, the handle's lifetime
 *   tokenizer_basic.c  Unicode clean-up and word splitting (BasicTokenizer)
 *   wordpiece.c        special-token splitting and WordPiece (text -> ids)
 *   tokenizer_encode.c [CLS]/[SEP] framing, truncation, padding, debug text
 */
#ifndef KD_MODEL_TOKENIZER_INTERNAL_H
#define KD_MODEL_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kd/model/tokenizer.h"

/* Open-addressing hash table of token ids keyed by token bytes. Slots hold
 * an id or -1; capacity is a power of two at least twice the key count, so
 * probe sequences stay short (linear probing). */
struct tok_table {
    int32_t *slots;
    uint32_t mask; /* capacity - 1 */
};

/* The vocabulary. All token strings live in one pool (the file's bytes with
 * line ends replaced by NUL), so id -> string is pool + off[id]. */
struct tok_vocab {
    char *pool;
    uint32_t *off;          /* (V) byte offset of token id in pool */
    uint32_t *len;          /* (V) byte length of token id */
    int32_t n;              /* V */
    struct tok_table whole; /* every token, keyed by its full text */
    struct tok_table piece; /* "##x" tokens keyed by "x" (WordPiece continuations) */
    uint32_t max_whole;     /* longest key in `whole`, bytes */
    uint32_t max_piece;     /* longest key in `piece`, bytes */
};

/* Growable code-point buffer. */
struct tok_cps {
    int32_t *v;
    size_t n, cap;
};

/* One word produced by the basic tokenizer: bytes [off, off+len) of
 * tok_words.bytes holding `chars` code points, or a special token written
 * in the text (special >= 0 is then its id and the bytes are unused). */
struct tok_word {
    size_t off, len, chars;
    int32_t special;
};

struct tok_words {
    char *bytes; /* UTF-8 of all words, back to back */
    size_t n_bytes, cap_bytes;
    struct tok_word *w;
    size_t n, cap;
};

struct tokenizer {
    struct tok_vocab vocab;
    int do_lower_case;
    int32_t special[TOKENIZER_SPECIAL_COUNT]; /* ids, -1 if absent */
    /* scratch, reused across calls (see "Threads" in tokenizer.h) */
    struct tok_cps seg;      /* decoded (and lowercased) text segment */
    struct tok_cps clean;    /* after clean-up, CJK spacing and NFC */
    struct tok_cps norm;     /* utf8proc decomposition output */
    struct tok_cps word;     /* one whitespace-separated token */
    char *utf8;              /* UTF-8 re-encoding fed to utf8proc */
    size_t cap_utf8;
    struct tok_words words;  /* basic tokenizer output */
    struct tokenizer_ids ids_a, ids_b; /* tokenizer_encode's sequences */
};

/* Literal text of each special token, indexed by enum tokenizer_special. */
extern const char *const tok_special_text[TOKENIZER_SPECIAL_COUNT];

/* Reads path into v. Returns 0, or -1 with err naming the file and line. */
int tok_vocab_load(struct tok_vocab *v, const char *path, struct kd_err *err);
void tok_vocab_free(struct tok_vocab *v);
/* Id of the token whose text is s[0..len), or -1. */
int32_t tok_vocab_find(const struct tok_vocab *v, const char *s, size_t len);
/* Id of the token "##" + s[0..len), or -1. */
int32_t tok_vocab_find_piece(const struct tok_vocab *v, const char *s, size_t len);

/* Basic tokenizer over len bytes of UTF-8 text that holds no special token:
 * decodes, lowercases (uncased), cleans, normalises and splits, appending
 * the words to tok->words. */
void tok_basic_segment(struct tokenizer *tok, const char *text, size_t len);

/* Growth helpers (abort through kd_realloc on out-of-memory). */
void tok_cps_reserve(struct tok_cps *b, size_t n);
void tok_ids_push(struct tokenizer_ids *ids, int32_t id);

#endif
