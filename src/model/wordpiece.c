/* wordpiece.c: text -> WordPiece ids (model layer; no MPI).
 *
 * First the special tokens written literally in the text ("a [SEP] b") are
 * cut out, as transformers' added-tokens trie does: each becomes its own id,
 * and the text between them goes through the basic tokenizer
 * (tokenizer_basic.c). Every resulting word is then split by WordPiece
 * (Schuster & Nakajima 2012; BERT's tokenization.py WordpieceTokenizer):
 * repeatedly take the longest vocabulary entry that prefixes the rest of the
 * word, written "##piece" after the first; a word that cannot be covered, or
 * has more than TOKENIZER_MAX_WORD_CHARS code points, is a single [UNK].
 */
#include "tokenizer_internal.h"

#include "kd/core/error.h"

#include <stdlib.h>
#include <string.h>

void tok_ids_push(struct tokenizer_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? 2 * ids->cap : 64;
        ids->ids = kd_realloc(ids->ids, ids->cap * sizeof *ids->ids);
    }
    ids->ids[ids->n++] = id;
}

void tokenizer_ids_free(struct tokenizer_ids *ids)
{
    if (!ids)
        return;
    free(ids->ids);
    ids->ids = NULL;
    ids->n = ids->cap = 0;
}

/* Greedy longest-match-first split of one word (UTF-8 w[0..len), `chars`
 * code points), appending its piece ids (or one [UNK]) to out. */
static void wordpiece_word(const struct tokenizer *tok, const char *w, size_t len,
                           size_t chars, struct tokenizer_ids *out)
{
    const struct tok_vocab *v = &tok->vocab;
    int32_t unk = tok->special[TOKENIZER_SPECIAL_UNK];
    if (chars > TOKENIZER_MAX_WORD_CHARS) {
        tok_ids_push(out, unk);
        return;
    }
    /* byte offset of every code point boundary; a substring must not cut a
     * code point, as Python slices characters */
    uint32_t bound[TOKENIZER_MAX_WORD_CHARS + 2]; /* +1 end, +1 for the check below */
    size_t nb = 0;
    for (size_t i = 0; i < len && nb <= chars; i++)
        if (((unsigned char)w[i] & 0xC0) != 0x80) /* not a continuation byte */
            bound[nb++] = (uint32_t)i;
    bound[nb] = (uint32_t)len;
    KD_ASSERT(nb == chars, "word has %zu code points, expected %zu", nb, chars);

    size_t n_before = out->n;
    size_t start = 0;
    while (start < chars) {
        size_t end = chars;
        int32_t id = -1;
        /* candidates longer than the longest vocabulary key cannot match */
        size_t max_key = start == 0 ? v->max_whole : v->max_piece;
        while (end > start && bound[end] - bound[start] > max_key)
            end--;
        for (; end > start; end--) {
            const char *s = w + bound[start];
            size_t n = bound[end] - bound[start];
            id = start == 0 ? tok_vocab_find(v, s, n) : tok_vocab_find_piece(v, s, n);
            if (id >= 0)
                break;
        }
        if (id < 0) { /* not coverable: the whole word is [UNK] */
            out->n = n_before;
            tok_ids_push(out, unk);
            return;
        }
        tok_ids_push(out, id);
        start = end;
    }
}

/* Special token present in the vocabulary that starts at text[0..len), as
 * enum tokenizer_special, or -1. */
static int tok_special_at(const struct tokenizer *tok, const char *text, size_t len)
{
    for (int s = 0; s < TOKENIZER_SPECIAL_COUNT; s++) {
        const char *t = tok_special_text[s];
        size_t n = strlen(t);
        if (tok->special[s] >= 0 && n <= len && memcmp(text, t, n) == 0)
            return s;
    }
    return -1;
}

int tokenizer_tokenize(tokenizer_t *tok, const char *text, size_t len,
                       struct tokenizer_ids *out)
{
    struct tok_words *ws = &tok->words;
    ws->n = 0;
    ws->n_bytes = 0;
    /* Cut out literal special tokens. None of them is a prefix of another,
     * so the leftmost match is the trie's match. */
    size_t seg = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '[')
            continue;
        int s = tok_special_at(tok, text + i, len - i);
        if (s < 0)
            continue;
        if (i > seg)
            tok_basic_segment(tok, text + seg, i - seg);
        if (ws->n == ws->cap) {
            ws->cap = ws->cap ? 2 * ws->cap : 256;
            ws->w = kd_realloc(ws->w, ws->cap * sizeof *ws->w);
        }
        ws->w[ws->n++] = (struct tok_word){.off = 0, .len = 0, .chars = 0,
                                           .special = tok->special[s]};
        i += strlen(tok_special_text[s]) - 1;
        seg = i + 1;
    }
    if (len > seg)
        tok_basic_segment(tok, text + seg, len - seg);

    for (size_t k = 0; k < ws->n; k++) {
        const struct tok_word *w = &ws->w[k];
        if (w->special >= 0)
            tok_ids_push(out, w->special);
        else
            wordpiece_word(tok, ws->bytes + w->off, w->len, w->chars, out);
    }
    return 0;
}
