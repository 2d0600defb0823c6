/* t_tokenizer.c: the tokenizer against Hugging Face BertTokenizer on the
 * hand-made vocabularies (tests/fixtures/tokenizer/cases.tsv: accents,
 * punctuation, CJK, control characters, long words, special tokens,
 * truncation, padding, cased and uncased), plus the API around encoding:
 * appending tokenize, NULL outputs, the debug formatter, max_len errors. */
#include "kd/model/tokenizer.h"
#include "t_tokenizer_cases.h"
#include "../tap.h"

#include <stdlib.h>
#include <string.h>

static tokenizer_t *load_fixture_vocab(const char *file, int lower)
{
    char *path = tcase_fixture(file);
    tokenizer_t *tok = NULL;
    struct kd_err err;
    if (tokenizer_load(&tok, path, lower, &err))
        bail_out("%s", err.msg);
    free(path);
    return tok;
}

/* Every golden case, each vocabulary with its own tokenizer. */
static void check_golden(tokenizer_t *uncased, tokenizer_t *cased)
{
    char *path = tcase_fixture("cases.tsv");
    struct tcase *cases;
    size_t n = tcase_read(path, &cases);
    ok(n >= 100, "cases.tsv holds %zu cases", n);
    for (size_t i = 0; i < n; i++) {
        tokenizer_t *tok = strcmp(cases[i].vocab, "cased") == 0 ? cased : uncased;
        tcase_check(tok, &cases[i]);
    }
    tcase_free(cases, n);
    free(path);
}

static void check_api(tokenizer_t *tok)
{
    /* tokenize appends, without [CLS]/[SEP] */
    struct tokenizer_ids ids = {0};
    tokenizer_tokenize(tok, "hello", 5, &ids);
    tokenizer_tokenize(tok, "unaffable", 9, &ids);
    char buf[256];
    tokenizer_ids_format(tok, ids.ids, ids.n, buf, sizeof buf);
    ok_str(buf, "hello un ##aff ##able", "tokenize appends word pieces");

    /* the formatter follows snprintf: cut, NUL-terminated, full length returned */
    size_t need = tokenizer_ids_format(tok, ids.ids, ids.n, buf, 8);
    ok(need == strlen("hello un ##aff ##able") && strcmp(buf, "hello u") == 0,
       "ids_format cuts at cap and returns the needed length (%zu, '%s')", need, buf);
    int32_t odd[2] = {-5, tokenizer_vocab_size(tok)};
    tokenizer_ids_format(tok, odd, 2, buf, sizeof buf);
    ok(strstr(buf, "<-5?>") != NULL, "ids outside the vocabulary print as <id?> ('%s')", buf);
    tokenizer_ids_free(&ids);

    /* token_type_ids and attention_mask are optional */
    int32_t in[8], types[8], mask[8], in2[8];
    struct kd_err err;
    int64_t n1 = tokenizer_encode(tok, "hello world", 11, "good", 4, 8, in, types, mask, &err);
    int64_t n2 = tokenizer_encode(tok, "hello world", 11, "good", 4, 8, in2, NULL, NULL, &err);
    ok(n1 == 6 && n2 == 6 && memcmp(in, in2, sizeof in) == 0,
       "encode without types/mask gives the same ids");
    ok(types[3] == 0 && types[4] == 1 && types[5] == 1 && types[6] == 0 && mask[5] == 1 &&
       mask[6] == 0, "types are 1 on b and its [SEP], 0 on padding");

    /* max_len below the special tokens' count is an error, not a crash */
    ok(tokenizer_encode(tok, "a", 1, NULL, 0, 1, in, types, mask, &err) == -1 &&
       strstr(err.msg, "expected max_len >= 2") != NULL,
       "single with max_len 1 fails: %s", err.msg);
    ok(tokenizer_encode(tok, "a", 1, "b", 1, 2, in, types, mask, &err) == -1 &&
       strstr(err.msg, "expected max_len >= 3") != NULL,
       "pair with max_len 2 fails: %s", err.msg);

    /* invalid UTF-8 bytes read as U+FFFD, which the clean-up removes */
    int64_t n3 = tokenizer_encode(tok, "hel\xff\xfelo", 7, NULL, 0, 8, in, NULL, NULL, &err);
    int32_t hello = tokenizer_token_to_id(tok, "hello");
    ok(n3 == 3 && in[1] == hello, "invalid UTF-8 bytes are dropped");

    /* a long text (longer than any scratch buffer's first size) */
    size_t big = 13 * 15385; /* whole repeats of the 13-byte pattern */
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        text[i] = "hello world. "[i % 13];
    text[big] = '\0';
    struct tokenizer_ids many = {0};
    tokenizer_tokenize(tok, text, big, &many);
    size_t want = 3 * (big / 13); /* hello world . */
    ok(many.n == want, "a 200 kB text gives %zu tokens (want %zu)", many.n, want);
    tokenizer_ids_free(&many);
    free(text);
}

int main(void)
{
    tokenizer_t *uncased = load_fixture_vocab("vocab_uncased.txt", 1);
    tokenizer_t *cased = load_fixture_vocab("vocab_cased.txt", 0);
    ok(tokenizer_do_lower_case(uncased) == 1 && tokenizer_do_lower_case(cased) == 0,
       "do_lower_case is kept");
    check_golden(uncased, cased);
    check_api(uncased);
    tokenizer_free(uncased);
    tokenizer_free(cased);
    return done_testing();
}
