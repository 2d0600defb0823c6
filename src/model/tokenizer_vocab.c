/* tokenizer_vocab.c: reads vocab.txt, builds the token hash tables and owns
 * the tokenizer handle's lifetime (model layer; no MPI, no HDF5).
 *
 * transformers' load_vocab reads the file in text mode (universal newlines)
 * and strips "\n": token i is line i. We keep the same numbering and add
 * checks it lacks: a duplicate would silently shadow an id in Python's dict,
 * an empty line would give a token no text can produce.
 */
#include "tokenizer_internal.h"

#include "kd/core/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

const char *const tok_special_text[TOKENIZER_SPECIAL_COUNT] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

/* ---- hash tables -------------------------------------------------------- */

/* FNV-1a, 64 bit, folded to 32: short keys, good spread, no state. */
static uint32_t tok_hash_bytes(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* Sizes the table for n_keys at load factor <= 1/2 and marks every slot
 * empty. The table never grows afterwards: all keys are known at load. */
static void tok_table_init(struct tok_table *t, int32_t n_keys)
{
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)n_keys)
        cap <<= 1;
    t->slots = kd_malloc(cap * sizeof *t->slots);
    memset(t->slots, 0xff, cap * sizeof *t->slots); /* all -1 */
    t->mask = cap - 1;
}

/* Finds key s[0..len) where the stored key of id is its token text from byte
 * `skip` on (skip = 2 drops the "##" of continuation pieces). Returns the
 * slot holding it, or the empty slot where it would go. */
static uint32_t tok_table_slot(const struct tok_table *t, const struct tok_vocab *v,
                               size_t skip, const char *s, size_t len)
{
    uint32_t i = tok_hash_bytes(s, len) & t->mask;
    for (;;) {
        int32_t id = t->slots[i];
        if (id < 0)
            return i;
        if (v->len[id] - skip == len && memcmp(v->pool + v->off[id] + skip, s, len) == 0)
            return i;
        i = (i + 1) & t->mask;
    }
}

/* The length guards make the common miss (a WordPiece candidate longer
 * than any token) cost no hashing at all. */
int32_t tok_vocab_find(const struct tok_vocab *v, const char *s, size_t len)
{
    if (len > v->max_whole)
        return -1;
    return v->whole.slots[tok_table_slot(&v->whole, v, 0, s, len)];
}

int32_t tok_vocab_find_piece(const struct tok_vocab *v, const char *s, size_t len)
{
    if (len > v->max_piece || !v->piece.slots)
        return -1;
    return v->piece.slots[tok_table_slot(&v->piece, v, 2, s, len)];
}

/* ---- vocab.txt ---------------------------------------------------------- */

/* Reads the whole file into one NUL-terminated buffer, which becomes the
 * token pool: bert-base-uncased's vocab.txt is 226 kB, so one read and no
 * per-token allocation. */
static int tok_read_file(const char *path, char **data, size_t *size, struct kd_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kd_errf(err, "%s: cannot open the vocabulary: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = kd_malloc(cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) /* short read: end of file or error (checked below) */
            break;
        cap *= 2; /* full: there may be more */
        buf = kd_realloc(buf, cap + 1);
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return kd_errf(err, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return 0;
}

/* Checks that s[0..len) is valid UTF-8 (as Python's strict decoder: no
 * surrogates, no overlongs). Returns the offset of the first bad byte or -1. */
static long tok_utf8_check(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0)
            return (long)i;
        i += (size_t)k;
    }
    return -1;
}

int tok_vocab_load(struct tok_vocab *v, const char *path, struct kd_err *err)
{
    memset(v, 0, sizeof *v);
    char *data = NULL;
    size_t size = 0;
    if (tok_read_file(path, &data, &size, err))
        return -1;
    if (size == 0) {
        free(data);
        return kd_errf(err, "%s: expected one token per line, got an empty file", path);
    }
    /* Pass 1: count lines, so that the id arrays and the hash table are
     * sized once. A line ends at LF, CRLF or a lone CR (Python's universal
     * newlines); a final line without newline still counts. */
    size_t n_lines = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\n' || (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n')))
            n_lines++;
    }
    if (data[size - 1] != '\n' && data[size - 1] != '\r')
        n_lines++;
    if (n_lines > ((size_t)1 << 30) || size >= UINT32_MAX) {
        free(data);
        return kd_errf(err, "%s: expected at most 2^30 tokens and 4 GiB, got %zu lines, "
                       "%zu bytes", path, n_lines, size);
    }
    v->pool = data;
    v->off = kd_malloc(n_lines * sizeof *v->off);
    v->len = kd_malloc(n_lines * sizeof *v->len);
    tok_table_init(&v->whole, (int32_t)n_lines);

    /* Pass 2: cut lines, validate, insert. Line ends become NUL in place. */
    size_t pos = 0;
    int32_t id = 0;
    int32_t n_pieces = 0;
    while (pos < size) {
        /* the line is data[pos, end); the next one starts after its LF, CR
         * or CRLF */
        size_t end = pos;
        while (end < size && data[end] != '\n' && data[end] != '\r')
            end++;
        size_t next = end;
        if (next < size)
            next += (data[next] == '\r' && next + 1 < size && data[next + 1] == '\n') ? 2 : 1;
        data[end] = '\0'; /* data[size] is the slurp's NUL, so this is in bounds */
        size_t len = end - pos;
        long line = (long)id + 1; /* empty lines are errors, so line = id + 1 */
        if (len == 0) {
            tok_vocab_free(v);
            return kd_errf(err, "%s:%ld: expected a token, got an empty line", path, line);
        }
        long bad = tok_utf8_check(data + pos, len);
        if (bad >= 0) {
            int byte = (unsigned char)data[pos + (size_t)bad];
            tok_vocab_free(v);
            return kd_errf(err, "%s:%ld: expected UTF-8 text, got the invalid byte 0x%02x "
                           "at byte %ld of the line", path, line, byte, bad + 1);
        }
        v->off[id] = (uint32_t)pos;
        v->len[id] = (uint32_t)len;
        /* insertion doubles as the duplicate check: the probe stops at the
         * earlier id when the text is already present */
        uint32_t slot = tok_table_slot(&v->whole, v, 0, data + pos, len);
        if (v->whole.slots[slot] >= 0) {
            long first = (long)v->whole.slots[slot] + 1;
            kd_errf(err, "%s:%ld: expected each token once, got '%s' again (first on "
                    "line %ld)", path, line, data + pos, first);
            tok_vocab_free(v);
            return -1;
        }
        v->whole.slots[slot] = id;
        if (len > v->max_whole)
            v->max_whole = (uint32_t)len;
        if (len > 2 && data[pos] == '#' && data[pos + 1] == '#')
            n_pieces++; /* "##" alone is a whole-word token only */
        id++;
        pos = next;
    }
    v->n = id;

    /* Continuation pieces, keyed without their "##". Distinct whole tokens
     * give distinct keys, so no duplicate check is needed here. */
    tok_table_init(&v->piece, n_pieces);
    for (int32_t i = 0; i < v->n; i++) {
        const char *s = v->pool + v->off[i];
        if (v->len[i] > 2 && s[0] == '#' && s[1] == '#') {
            size_t klen = v->len[i] - 2;
            v->piece.slots[tok_table_slot(&v->piece, v, 2, s + 2, klen)] = i;
            if (klen > v->max_piece)
                v->max_piece = (uint32_t)klen;
        }
    }
    return 0;
}

void tok_vocab_free(struct tok_vocab *v)
{
    free(v->pool);
    free(v->off);
    free(v->len);
    free(v->whole.slots);
    free(v->piece.slots);
    memset(v, 0, sizeof *v);
}

/* ---- the handle --------------------------------------------------------- */

int tokenizer_load(tokenizer_t **out, const char *vocab_path, int do_lower_case,
                   struct kd_err *err)
{
    *out = NULL;
    /* calloc: every scratch buffer starts empty and grows on first use */
    tokenizer_t *tok = kd_calloc(1, sizeof *tok);
    if (tok_vocab_load(&tok->vocab, vocab_path, err)) {
        free(tok);
        return -1;
    }
    tok->do_lower_case = do_lower_case ? 1 : 0;
    /* Special tokens are found by name, never assumed at fixed ids: the
     * uncased and cased BERT vocabularies place them differently. */
    for (int s = 0; s < TOKENIZER_SPECIAL_COUNT; s++) {
        const char *text = tok_special_text[s];
        tok->special[s] = tok_vocab_find(&tok->vocab, text, strlen(text));
        if (tok->special[s] < 0 && s != TOKENIZER_SPECIAL_MASK) {
            kd_errf(err, "%s: expected the special token %s in the vocabulary, got none "
                    "among its %ld tokens\nHINT: a BERT vocab.txt lists [PAD] [UNK] "
                    "[CLS] [SEP] [MASK] (bert-base-uncased: ids 0, 100, 101, 102, 103)",
                    vocab_path, text, (long)tok->vocab.n);
            tokenizer_free(tok);
            return -1;
        }
    }
    *out = tok;
    return 0;
}

void tokenizer_free(tokenizer_t *tok)
{
    if (!tok)
        return;
    tok_vocab_free(&tok->vocab);
    free(tok->seg.v);
    free(tok->clean.v);
    free(tok->norm.v);
    free(tok->word.v);
    free(tok->utf8);
    free(tok->words.bytes);
    free(tok->words.w);
    tokenizer_ids_free(&tok->ids_a);
    tokenizer_ids_free(&tok->ids_b);
    free(tok);
}

int32_t tokenizer_vocab_size(const tokenizer_t *tok) { return tok->vocab.n; }

int tokenizer_do_lower_case(const tokenizer_t *tok) { return tok->do_lower_case; }

int32_t tokenizer_special_id(const tokenizer_t *tok, enum tokenizer_special which)
{
    if ((int)which < 0 || which >= TOKENIZER_SPECIAL_COUNT)
        return -1;
    return tok->special[which];
}

int32_t tokenizer_token_to_id(const tokenizer_t *tok, const char *token)
{
    return tok_vocab_find(&tok->vocab, token, strlen(token));
}

const char *tokenizer_id_to_token(const tokenizer_t *tok, int32_t id)
{
    if (id < 0 || id >= tok->vocab.n)
        return NULL;
    return tok->vocab.pool + tok->vocab.off[id];
}
