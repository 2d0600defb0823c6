/* tokenizer_basic.c: BERT's basic tokenizer, the Unicode half of the
 * pipeline (model layer; no MPI). All character classes and normal forms come
 * from utf8proc.
 *
 * Order of operations, as transformers 4.40 (tokenization_utils.py
 * PreTrainedTokenizer.tokenize, then tokenization_bert.py BasicTokenizer):
 *   1. uncased: str.lower() on each code point outside special tokens
 *   2. _clean_text: drop NUL, U+FFFD and category C*; tab/LF/CR/Zs -> ' '
 *   3. _tokenize_chinese_chars: ' ' around CJK ideographs
 *   4. NFC
 *   5. str.split(): whitespace tokens
 *   6. per token, unless it is a special token: uncased -> lower() again,
 *      NFD, drop Mn; then split off every punctuation character
 * Steps 1-4 run on the segment as a code-point array, step 5-6 per token;
 * the resulting words are appended as UTF-8 to tok->words for WordPiece.
 */
#include "tokenizer_internal.h"

#include "kd/core/error.h"

#include <string.h>
#include <utf8proc.h>

/* ---- buffers ------------------------------------------------------------ */

void tok_cps_reserve(struct tok_cps *b, size_t n)
{
    if (n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n)
        cap *= 2;
    b->v = kd_realloc(b->v, cap * sizeof *b->v);
    b->cap = cap;
}

static void tok_utf8_reserve(struct tokenizer *tok, size_t n)
{
    if (n <= tok->cap_utf8)
        return;
    size_t cap = tok->cap_utf8 ? tok->cap_utf8 : 1024;
    while (cap < n)
        cap *= 2;
    tok->utf8 = kd_realloc(tok->utf8, cap);
    tok->cap_utf8 = cap;
}

/* Encodes cps[0..n) into tok->utf8 and returns the byte count. */
static size_t tok_encode_utf8(struct tokenizer *tok, const int32_t *cps, size_t n)
{
    tok_utf8_reserve(tok, 4 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cps[i] < 0x80)
            tok->utf8[k++] = (char)cps[i];
        else
            k += (size_t)utf8proc_encode_char(cps[i], (utf8proc_uint8_t *)tok->utf8 + k);
    }
    return k;
}

/* ---- character classes (tokenization_utils.py / tokenization_bert.py) ---- */

/* _is_whitespace: ' ', \t, \n, \r and category Zs. */
static int tok_is_whitespace(int32_t cp)
{
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r')
        return 1;
    if (cp < 0x80)
        return 0;
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}

/* _is_control: any C* category (Cc, Cf, Cs, Co and unassigned Cn), except
 * tab, LF and CR which count as whitespace. */
static int tok_is_control(int32_t cp)
{
    if (cp == '\t' || cp == '\n' || cp == '\r')
        return 0;
    if (cp < 0x80)
        return cp < 0x20 || cp == 0x7f;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_CN || c >= UTF8PROC_CATEGORY_CC;
}

/* _is_punctuation: all non-alphanumeric printable ASCII (so $ + < = > ^ `
 * | ~ too, which Unicode calls symbols) plus categories Pc Pd Ps Pe Pi Pf Po. */
static int tok_is_punct(int32_t cp)
{
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126))
        return 1;
    if (cp < 0x80)
        return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

/* _is_chinese_char: the CJK Unified Ideographs blocks BERT lists (not
 * Hangul, kana or CJK punctuation). */
static int tok_is_cjk(int32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* Python's str.split() separators that survive _clean_text: ' ' (every
 * other whitespace was mapped to it or removed as control) and the line and
 * paragraph separators U+2028/U+2029 (categories Zl/Zp, not C*, not Zs). */
static int tok_is_split_space(int32_t cp)
{
    return cp == ' ' || cp == 0x2028 || cp == 0x2029;
}

/* Appends the lowercase of cp as Python's str.lower(): the simple mapping,
 * except U+0130 (capital I with dot above), whose full mapping is i + U+0307
 * (the only unconditional multi-code-point lowercase in SpecialCasing.txt). */
static void tok_push_lower(struct tok_cps *b, int32_t cp)
{
    if (cp == 0x130) {
        b->v[b->n++] = 'i';
        b->v[b->n++] = 0x307;
        return;
    }
    b->v[b->n++] = cp < 0x80 ? ((cp >= 'A' && cp <= 'Z') ? cp + 32 : cp)
                             : utf8proc_tolower(cp);
}

/* ---- steps 1-4 ---------------------------------------------------------- */

/* Step 1: decodes UTF-8 into tok->seg, lowercasing when uncased. Invalid
 * bytes become U+FFFD, which step 2 removes. */
static void tok_decode(struct tokenizer *tok, const char *text, size_t len)
{
    struct tok_cps *b = &tok->seg;
    b->n = 0;
    tok_cps_reserve(b, 2 * len + 1); /* U+0130 (2 bytes) lowercases to 2 code points */
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        int32_t cp = s[i];
        if (cp < 0x80) {
            i++;
        } else {
            utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
            if (k <= 0) {
                cp = 0xFFFD;
                k = 1;
            }
            i += (size_t)k;
        }
        if (tok->do_lower_case)
            tok_push_lower(b, cp);
        else
            b->v[b->n++] = cp;
    }
}

/* Steps 2-3: tok->seg -> tok->clean. Returns the largest code point kept. */
static int32_t tok_clean(struct tokenizer *tok)
{
    const struct tok_cps *in = &tok->seg;
    struct tok_cps *out = &tok->clean;
    out->n = 0;
    tok_cps_reserve(out, 3 * in->n + 1);
    int32_t max_cp = 0;
    for (size_t i = 0; i < in->n; i++) {
        int32_t cp = in->v[i];
        if (cp == 0 || cp == 0xFFFD || tok_is_control(cp))
            continue;
        if (tok_is_whitespace(cp)) {
            out->v[out->n++] = ' ';
        } else if (tok_is_cjk(cp)) {
            out->v[out->n++] = ' ';
            out->v[out->n++] = cp;
            out->v[out->n++] = ' ';
        } else {
            out->v[out->n++] = cp;
        }
        if (cp > max_cp)
            max_cp = cp;
    }
    return max_cp;
}

/* Canonical decomposition (with canonical reordering) of cps[0..n) into
 * tok->norm through utf8proc, which only reads UTF-8. `options` adds
 * UTF8PROC_COMPOSE (for NFC, composed afterwards) or UTF8PROC_DECOMPOSE. */
static void tok_decompose(struct tokenizer *tok, const int32_t *cps, size_t n,
                          utf8proc_option_t options)
{
    size_t nb = tok_encode_utf8(tok, cps, n);
    struct tok_cps *out = &tok->norm;
    tok_cps_reserve(out, n + 16);
    for (;;) {
        utf8proc_ssize_t r = utf8proc_decompose_custom(
            (const utf8proc_uint8_t *)tok->utf8, (utf8proc_ssize_t)nb, out->v,
            (utf8proc_ssize_t)out->cap, options, NULL, NULL);
        KD_ASSERT(r >= 0, "utf8proc_decompose_custom: %s", utf8proc_errmsg(r));
        if ((size_t)r <= out->cap) {
            out->n = (size_t)r;
            return;
        }
        tok_cps_reserve(out, (size_t)r); /* result did not fit: grow and redo */
    }
}

/* Step 4: NFC of tok->clean in place. Code points below U+0300 are all NFC
 * and no composition starts with a second character below U+0300, so pure
 * Latin-1 text (all of SST-2) skips utf8proc. */
static void tok_nfc(struct tokenizer *tok, int32_t max_cp)
{
    if (max_cp < 0x300)
        return;
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    tok_decompose(tok, tok->clean.v, tok->clean.n, opt);
    utf8proc_ssize_t r = utf8proc_normalize_utf32(tok->norm.v, (utf8proc_ssize_t)tok->norm.n, opt);
    KD_ASSERT(r >= 0, "utf8proc_normalize_utf32: %s", utf8proc_errmsg(r));
    /* swap so that tok->clean holds the result */
    struct tok_cps t = tok->clean;
    tok->clean = tok->norm;
    tok->clean.n = (size_t)r;
    tok->norm = t;
}

/* ---- steps 5-6 ---------------------------------------------------------- */

/* Appends cps[0..n) as one word (UTF-8, at most 4 bytes per code point). */
static void tok_words_push(struct tok_words *ws, const int32_t *cps, size_t n, int32_t special)
{
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? 2 * ws->cap : 256;
        ws->w = kd_realloc(ws->w, ws->cap * sizeof *ws->w);
    }
    if (ws->n_bytes + 4 * n > ws->cap_bytes) {
        size_t cap = ws->cap_bytes ? ws->cap_bytes : 4096;
        while (cap < ws->n_bytes + 4 * n)
            cap *= 2;
        ws->bytes = kd_realloc(ws->bytes, cap);
        ws->cap_bytes = cap;
    }
    struct tok_word *w = &ws->w[ws->n++];
    w->off = ws->n_bytes;
    w->chars = n;
    w->special = special;
    for (size_t i = 0; i < n; i++) {
        if (cps[i] < 0x80)
            ws->bytes[ws->n_bytes++] = (char)cps[i];
        else
            ws->n_bytes += (size_t)utf8proc_encode_char(
                cps[i], (utf8proc_uint8_t *)ws->bytes + ws->n_bytes);
    }
    w->len = ws->n_bytes - w->off;
}

/* Whether cps[0..n) spells a special token: BasicTokenizer's never_split
 * then keeps it whole (no lowercasing, no punctuation split) and WordPiece
 * finds it as a whole-word token. Reached only when step 2 assembled it,
 * e.g. "[CL\0S]" -> "[CLS]" in cased text (uncased text became "[cls]" in
 * step 1); specials written plainly were split out before (wordpiece.c). */
static int tok_is_never_split(const int32_t *cps, size_t n)
{
    if ((n != 5 && n != 6) || cps[0] != '[')
        return 0;
    for (int s = 0; s < TOKENIZER_SPECIAL_COUNT; s++) {
        const char *t = tok_special_text[s];
        if (strlen(t) != n)
            continue;
        size_t i = 0;
        while (i < n && cps[i] == (unsigned char)t[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* Step 6 for one whitespace token cps[0..n) (not aliasing tok->word). */
static void tok_basic_word(struct tokenizer *tok, const int32_t *cps, size_t n)
{
    if (tok_is_never_split(cps, n)) {
        tok_words_push(&tok->words, cps, n, -1);
        return;
    }
    if (tok->do_lower_case) {
        /* lower() again (NFC may have built new capitals), then strip
         * accents: NFD and drop Mn. Nothing below U+00C0 decomposes. */
        struct tok_cps *lw = &tok->word;
        lw->n = 0;
        tok_cps_reserve(lw, 2 * n + 1);
        int32_t max_cp = 0;
        for (size_t i = 0; i < n; i++) {
            tok_push_lower(lw, cps[i]);
            if (cps[i] > max_cp)
                max_cp = cps[i];
        }
        if (max_cp >= 0xC0) {
            tok_decompose(tok, lw->v, lw->n, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
            lw->n = 0;
            tok_cps_reserve(lw, tok->norm.n);
            for (size_t i = 0; i < tok->norm.n; i++)
                if (utf8proc_category(tok->norm.v[i]) != UTF8PROC_CATEGORY_MN)
                    lw->v[lw->n++] = tok->norm.v[i];
        }
        cps = lw->v;
        n = lw->n;
    }
    /* _run_split_on_punc: every punctuation character is a word of its own */
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok_is_punct(cps[i])) {
            if (i > start)
                tok_words_push(&tok->words, cps + start, i - start, -1);
            tok_words_push(&tok->words, cps + i, 1, -1);
            start = i + 1;
        }
    }
    if (n > start)
        tok_words_push(&tok->words, cps + start, n - start, -1);
}

void tok_basic_segment(struct tokenizer *tok, const char *text, size_t len)
{
    tok_decode(tok, text, len);
    int32_t max_cp = tok_clean(tok);
    tok_nfc(tok, max_cp);
    /* step 5: whitespace tokens of tok->clean */
    const int32_t *c = tok->clean.v;
    size_t n = tok->clean.n, i = 0;
    while (i < n) {
        while (i < n && tok_is_split_space(c[i]))
            i++;
        size_t start = i;
        while (i < n && !tok_is_split_space(c[i]))
            i++;
        if (i > start)
            tok_basic_word(tok, c + start, i - start);
    }
}
