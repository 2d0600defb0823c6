/* t_tokenizer_sst2.c: the tokenizer with the real bert-base-uncased
 * vocabulary against Hugging Face's ids, on the golden cases
 * (bert_uncased_cases.tsv) and on the first sentences of SST-2 dev
 * (sst2_dev_uncased.tsv), then a timing pass over SST-2 train.
 * The vocabulary and SST-2 live in $KD_SHARED/data (never in the
 * repository); without them the whole test is skipped. */
#include "kd/core/log.h"
#include "kd/model/tokenizer.h"
#include "t_tokenizer_cases.h"
#include "../tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LEN 128

static char *shared_path(const char *rel)
{
    const char *root = getenv("KD_SHARED");
    if (!root || !*root)
        root = "../shared";
    size_t n = strlen(root) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", root, rel);
    return p;
}

/* Splits a whole file into lines in place (LF ends; a final partial line
 * counts). Returns the count; *lines points into text. */
static size_t split_lines(char *text, size_t size, char ***lines)
{
    size_t n = 0, cap = 1024;
    char **v = malloc(cap * sizeof *v);
    char *p = text, *end = text + size;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[n++] = p;
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    *lines = v;
    return n;
}

/* The sentence of a GLUE line: everything before the first tab. */
static size_t sentence_len(const char *line)
{
    const char *tab = strchr(line, '\t');
    return tab ? (size_t)(tab - line) : strlen(line);
}

static void check_dev(tokenizer_t *tok, const char *dev_path)
{
    size_t dev_size;
    char *dev = tcase_slurp(dev_path, &dev_size);
    char **dev_lines;
    size_t n_dev = split_lines(dev, dev_size, &dev_lines);

    char *exp_path = tcase_fixture("sst2_dev_uncased.tsv");
    size_t exp_size;
    char *exp = tcase_slurp(exp_path, &exp_size);
    if (!exp)
        bail_out("cannot read %s", exp_path);
    char **exp_lines;
    size_t n_exp = split_lines(exp, exp_size, &exp_lines);

    int32_t ids[MAX_LEN], mask[MAX_LEN], types[MAX_LEN];
    size_t checked = 0, failed = 0;
    for (size_t i = 0; i < n_exp; i++) {
        const char *l = exp_lines[i];
        if (!*l || l[0] == '#')
            continue;
        char *end;
        long lineno = strtol(l, &end, 10);
        long bytes = strtol(end, &end, 10);
        if (lineno < 1 || (size_t)lineno > n_dev)
            bail_out("%s: dev line %ld beyond the %zu lines of %s", exp_path, lineno, n_dev,
                     dev_path);
        const char *s = dev_lines[lineno - 1];
        size_t len = sentence_len(s);
        if ((long)len != bytes) {
            failed++;
            diag("%s:%ld: expected a %ld-byte sentence, got %zu bytes (another dev.tsv?)",
                 dev_path, lineno, bytes, len);
            continue;
        }
        struct kd_err err;
        int64_t real = tokenizer_encode(tok, s, len, NULL, 0, MAX_LEN, ids, types, mask, &err);
        int32_t want[MAX_LEN];
        int64_t n_want = 0;
        for (;;) { /* the rest of the line: expected ids */
            char *next;
            long v = strtol(end, &next, 10);
            if (next == end || n_want == MAX_LEN)
                break;
            want[n_want++] = (int32_t)v;
            end = next;
        }
        int same = real == n_want && memcmp(ids, want, (size_t)n_want * sizeof *ids) == 0;
        for (int64_t t = real; same && t < MAX_LEN; t++)
            same = ids[t] == 0 && mask[t] == 0 && types[t] == 0;
        if (!same && failed++ < 5) {
            char got[4096], exp_tokens[4096];
            tokenizer_ids_format(tok, ids, real > 0 ? (size_t)real : 0, got, sizeof got);
            tokenizer_ids_format(tok, want, (size_t)n_want, exp_tokens, sizeof exp_tokens);
            diag("dev line %ld: %.*s", lineno, (int)len, s);
            diag("  got:  %s", got);
            diag("  want: %s", exp_tokens);
        }
        checked++;
    }
    ok(checked >= 200 && failed == 0, "%zu SST-2 dev sentences match Hugging Face (%zu differ)",
       checked, failed);
    free(exp_lines);
    free(exp);
    free(exp_path);
    free(dev_lines);
    free(dev);
}

/* Tokenizes all of SST-2 train as the data pipeline will (max_len 128) and
 * reports the rate. Ids must stay inside the vocabulary. */
static void bench_train(tokenizer_t *tok, const char *train_path)
{
    size_t size;
    char *text = tcase_slurp(train_path, &size);
    if (!text) {
        skip(1, "SST-2 train.tsv not found");
        return;
    }
    char **lines;
    size_t n = split_lines(text, size, &lines);
    int32_t ids[MAX_LEN];
    int32_t v = tokenizer_vocab_size(tok);
    size_t sentences = 0, tokens = 0, bad = 0;
    double t0 = wall_seconds();
    for (size_t i = 1; i < n; i++) { /* line 1 is the header */
        size_t len = sentence_len(lines[i]);
        if (len == 0 && lines[i][0] == '\0')
            continue;
        struct kd_err err;
        int64_t real = tokenizer_encode(tok, lines[i], len, NULL, 0, MAX_LEN, ids, NULL, NULL,
                                        &err);
        if (real < 2)
            bad++;
        for (int64_t t = 0; t < real; t++)
            bad += ids[t] < 0 || ids[t] >= v;
        sentences++;
        tokens += (size_t)real;
    }
    double dt = wall_seconds() - t0;
    ok(bad == 0 && sentences > 60000, "SST-2 train: %zu sentences, %zu tokens, ids in range",
       sentences, tokens);
    diag("SST-2 train tokenized in %.3f s: %.0f sentences/s, %.0f tokens/s", dt,
         sentences / (dt > 0 ? dt : 1e-9), tokens / (dt > 0 ? dt : 1e-9));
    free(lines);
    free(text);
}

int main(void)
{
    char *vocab = shared_path("data/vocab/bert-base-uncased-vocab.txt");
    char *dev = shared_path("data/glue/SST-2/dev.tsv");
    char *train = shared_path("data/glue/SST-2/train.tsv");
    if (access(vocab, R_OK) != 0 || access(dev, R_OK) != 0)
        skip_all("shared data absent ($KD_SHARED/data: bert-base-uncased vocab, SST-2 dev)");

    tokenizer_t *tok;
    struct kd_err err;
    if (tokenizer_load(&tok, vocab, 1, &err))
        bail_out("%s", err.msg);
    ok(tokenizer_vocab_size(tok) == 30522 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_PAD) == 0 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_UNK) == 100 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_CLS) == 101 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_SEP) == 102 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_MASK) == 103,
       "bert-base-uncased: V = 30522, [PAD] [UNK] [CLS] [SEP] [MASK] = 0 100 101 102 103");

    char *cases_path = tcase_fixture("bert_uncased_cases.tsv");
    struct tcase *cases;
    size_t n = tcase_read(cases_path, &cases);
    for (size_t i = 0; i < n; i++)
        tcase_check(tok, &cases[i]);
    tcase_free(cases, n);
    free(cases_path);

    check_dev(tok, dev);
    bench_train(tok, train);

    tokenizer_free(tok);
    free(vocab);
    free(dev);
    free(train);
    return done_testing();
}
