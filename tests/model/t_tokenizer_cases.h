/* t_tokenizer_cases.h: reader for the tokenizer golden-case files written by
 * tests/gen/make_tokenizer_cases.py (cases.tsv, bert_uncased_cases.tsv), and
 * the check that encodes one case and compares it with Hugging Face's result.
 * Shared by t_tokenizer.c and t_tokenizer_sst2.c. */
#ifndef KD_TESTS_T_TOKENIZER_CASES_H
#define KD_TESTS_T_TOKENIZER_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "kd/model/tokenizer.h"

struct tcase {
    int line;              /* line in the case file */
    char *name;
    char *vocab;           /* "uncased", "cased", "bert-base-uncased" */
    int64_t max_len;       /* T */
    int pair;              /* kind == "pair" */
    char *a, *b;           /* unescaped texts (may hold NUL bytes) */
    size_t a_len, b_len;
    int32_t *ids, *types, *mask; /* (T) expected */
    char *tokens;          /* expected token strings of the real positions */
};

/* Reads a case file; returns the number of cases, bails out on a malformed
 * file (a broken fixture is not a test verdict). */
size_t tcase_read(const char *path, struct tcase **cases);
void tcase_free(struct tcase *cases, size_t n);

/* Encodes c with tok, records one TAP point and prints the differences on
 * failure. Returns 1 on a match. */
int tcase_check(tokenizer_t *tok, const struct tcase *c);

/* $KD_SRCDIR/tests/fixtures/tokenizer/<name> (KD_SRCDIR defaults to the
 * source directory this test was configured from). Caller frees. */
char *tcase_fixture(const char *name);

/* Unescapes \\ \t \n \r \uXXXX \UXXXXXXXX in place; returns the byte length.
 * Returns (size_t)-1 on a bad escape. */
size_t tcase_unescape(char *s);

/* Reads a whole file (NUL-terminated); NULL if it cannot be opened. */
char *tcase_slurp(const char *path, size_t *size);

#endif
