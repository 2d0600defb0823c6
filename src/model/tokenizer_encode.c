/* tokenizer_encode.c: model inputs from one or two texts (model layer; no
 * MPI): [CLS]/[SEP] framing, token types, attention mask, truncation and
 * padding, as transformers' `tokenizer(a, b, max_length=T, truncation=True,
 * padding="max_length")`; plus a debug formatter for id lists.
 */
#include "tokenizer_internal.h"

#include "kd/core/error.h"

#include <stdio.h>
#include <string.h>

/* Longest-first truncation (tokenization_utils_base.py truncate_sequences,
 * LONGEST_FIRST): removing `excess` tokens one at a time from the end of the
 * longer sequence, from b on a tie, is the same as: first take the length
 * difference off the longer one, then split the rest evenly with b taking
 * the odd token. This is the closed form of that loop. */
static void tok_truncate_pair(size_t *na, size_t *nb, size_t excess)
{
    size_t diff = *na > *nb ? *na - *nb : *nb - *na;
    size_t first = diff < excess ? diff : excess;
    size_t rest = excess - first;
    size_t cut_a, cut_b;
    if (*na > *nb) {
        cut_a = first + rest / 2;
        cut_b = rest - rest / 2;
    } else {
        cut_a = rest / 2;
        cut_b = first + rest - rest / 2;
    }
    *na -= cut_a;
    *nb -= cut_b;
}

int64_t tokenizer_encode(tokenizer_t *tok, const char *text_a, size_t len_a,
                         const char *text_b, size_t len_b, int64_t max_len,
                         int32_t *input_ids, int32_t *token_type_ids,
                         int32_t *attention_mask, struct kd_err *err)
{
    const int pair = text_b != NULL;
    const int64_t n_special = pair ? 3 : 2; /* [CLS] a [SEP] (b [SEP]) */
    if (max_len < n_special)
        return kd_errf(err, "tokenizer_encode: expected max_len >= %d for a %s, got %lld",
                       (int)n_special, pair ? "pair" : "single sequence",
                       (long long)max_len);
    /* Word pieces of each text, in the handle's reusable id buffers. */
    tok->ids_a.n = 0;
    tok->ids_b.n = 0;
    tokenizer_tokenize(tok, text_a, len_a, &tok->ids_a);
    if (pair)
        tokenizer_tokenize(tok, text_b, len_b, &tok->ids_b);

    /* Truncate to the room left beside the special tokens. A single
     * sequence simply loses its tail (transformers' ONLY_FIRST path, which
     * LONGEST_FIRST falls back to without a pair). */
    size_t na = tok->ids_a.n, nb = tok->ids_b.n;
    size_t room = (size_t)(max_len - n_special);
    if (na + nb > room) {
        if (pair)
            tok_truncate_pair(&na, &nb, na + nb - room);
        else
            na = room;
    }

    /* Layout: [CLS] a[0..na) [SEP] (b[0..nb) [SEP]) [PAD]...; positions
     * [0, real) are attended, types switch to 1 right after the first [SEP]. */
    const int32_t cls = tok->special[TOKENIZER_SPECIAL_CLS];
    const int32_t sep = tok->special[TOKENIZER_SPECIAL_SEP];
    const int32_t pad = tok->special[TOKENIZER_SPECIAL_PAD];
    size_t t = 0;
    input_ids[t++] = cls;
    memcpy(input_ids + t, tok->ids_a.ids, na * sizeof *input_ids);
    t += na;
    input_ids[t++] = sep;
    const size_t end_a = t; /* type 0 up to and including the first [SEP] */
    if (pair) {
        memcpy(input_ids + t, tok->ids_b.ids, nb * sizeof *input_ids);
        t += nb;
        input_ids[t++] = sep;
    }
    const size_t real = t;
    for (; t < (size_t)max_len; t++)
        input_ids[t] = pad;

    if (token_type_ids)
        for (size_t i = 0; i < (size_t)max_len; i++)
            token_type_ids[i] = (i >= end_a && i < real) ? 1 : 0;
    if (attention_mask)
        for (size_t i = 0; i < (size_t)max_len; i++)
            attention_mask[i] = i < real ? 1 : 0;
    return (int64_t)real;
}

size_t tokenizer_ids_format(const tokenizer_t *tok, const int32_t *ids, size_t n,
                            char *buf, size_t cap)
{
    size_t need = 0;
    /* `need` counts the full text; bytes are copied only while they fit */
    for (size_t i = 0; i < n; i++) {
        char tmp[32];
        const char *s = tokenizer_id_to_token(tok, ids[i]);
        if (!s) {
            snprintf(tmp, sizeof tmp, "<%ld?>", (long)ids[i]);
            s = tmp;
        }
        size_t len = strlen(s) + (i > 0);
        /* copy what fits, keep counting what does not (snprintf contract) */
        if (cap > 0 && need < cap - 1) {
            char *dst = buf + need;
            size_t avail = cap - 1 - need;
            if (i > 0) {
                *dst++ = ' ';
                avail--;
            }
            size_t k = strlen(s) < avail ? strlen(s) : avail;
            memcpy(dst, s, k);
        }
        need += len;
    }
    if (cap > 0)
        buf[need < cap ? need : cap - 1] = '\0';
    return need;
}
