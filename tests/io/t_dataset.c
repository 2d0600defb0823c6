/* t_dataset.c: tokenized datasets end to end: the synthetic task with its own
 * vocabulary (single and pair, noise on train only), TSV fixtures and SST-2
 * with the real bert-base-uncased vocabulary from $KD_SHARED/data (skipped
 * when absent), row layout ([CLS] ... [SEP] padding, token types, mask),
 * agreement with tokenizer_encode, truncation counts, shards and per-epoch
 * shuffles. */
#include "kd/io/dataset.h"
#include "kd/core/log.h"
#include "kd/job/job.h"
#include "../tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The io enums are passed from the job's fields as they are. */
_Static_assert((int)DATASET_TASK_TSV == (int)DATA_TASK_TSV &&
               (int)DATASET_TASK_SYNTHETIC == (int)DATA_TASK_SYNTHETIC &&
               (int)DATASET_TASK_SYNTHETIC_PAIR == (int)DATA_TASK_SYNTHETIC_PAIR, "task values");
_Static_assert((int)TSV_PROBLEM_CLASSIFICATION == (int)DATA_PROBLEM_CLASSIFICATION &&
               (int)TSV_PROBLEM_REGRESSION == (int)DATA_PROBLEM_REGRESSION, "problem values");
_Static_assert((int)TSV_BAD_ROWS_ERROR == (int)DATA_BAD_ROWS_ERROR &&
               (int)TSV_BAD_ROWS_SKIP == (int)DATA_BAD_ROWS_SKIP, "bad_rows values");
_Static_assert((int)DATASET_SPLIT_DEV == (int)SYNTHETIC_SPLIT_DEV &&
               (int)DATASET_SPLIT_TEST == (int)SYNTHETIC_SPLIT_TEST, "split values");
_Static_assert((int)SYNTHETIC_SINGLE == (int)DATA_TASK_SYNTHETIC &&
               (int)SYNTHETIC_PAIR == (int)DATA_TASK_SYNTHETIC_PAIR, "synthetic kinds");

static char fixture_dir[4096];

static void find_fixtures(void)
{
    const char *src = getenv("KD_SRCDIR");
    if (src && src[0]) {
        snprintf(fixture_dir, sizeof fixture_dir, "%s/tests/io/tsv", src);
        return;
    }
    snprintf(fixture_dir, sizeof fixture_dir, "%s", __FILE__);
    char *slash = strrchr(fixture_dir, '/');
    if (slash)
        snprintf(slash, sizeof fixture_dir - (size_t)(slash - fixture_dir), "/tsv");
    else
        snprintf(fixture_dir, sizeof fixture_dir, "tsv");
}

/* Checks the layout of every row: [CLS] first, [SEP] last real token (and
 * between the texts of a pair), types 0 then 1 on b, mask = 1 on exactly
 * lengths[i] tokens, [PAD] / 0 / 0 after. Returns the number of bad rows. */
static int64_t bad_rows(const struct dataset *d, tokenizer_t *tok)
{
    int32_t cls = tokenizer_special_id(tok, TOKENIZER_SPECIAL_CLS);
    int32_t sep = tokenizer_special_id(tok, TOKENIZER_SPECIAL_SEP);
    int32_t pad = tokenizer_special_id(tok, TOKENIZER_SPECIAL_PAD);
    int64_t bad = 0, t = d->max_seq_len;
    for (int64_t i = 0; i < d->n; i++) {
        const int32_t *ids = d->input_ids + i * t, *ty = d->token_type_ids + i * t;
        const int32_t *m = d->attention_mask + i * t;
        int32_t len = d->lengths[i];
        int good = len >= (d->pair ? 3 : 2) && len <= t && ids[0] == cls && ids[len - 1] == sep;
        int seps = 0, b_started = 0;
        for (int64_t j = 0; j < t && good; j++) {
            if (j < len) {
                good = m[j] == 1 && ids[j] >= 0 && ids[j] < tokenizer_vocab_size(tok);
                /* type 1 from the token after the first [SEP] on */
                good = good && ty[j] == (b_started ? 1 : 0);
                if (ids[j] == sep && ++seps == 1 && d->pair)
                    b_started = 1;
            } else {
                good = ids[j] == pad && ty[j] == 0 && m[j] == 0;
            }
        }
        good = good && seps == (d->pair ? 2 : 1);
        bad += !good;
    }
    return bad;
}

/* Rows equal to tokenizer_encode of the same texts, for a TSV table. */
static int64_t rows_differing_from_encode(const struct dataset *d, const struct tsv_table *tb,
                                          tokenizer_t *tok)
{
    int64_t t = d->max_seq_len, diff = 0;
    int32_t *ids = malloc((size_t)t * sizeof *ids), *ty = malloc((size_t)t * sizeof *ty);
    int32_t *m = malloc((size_t)t * sizeof *m);
    struct kd_err err;
    for (int64_t i = 0; i < d->n; i++) {
        const struct tsv_row *r = &tb->rows[i];
        int64_t len = tokenizer_encode(tok, r->text_a, (size_t)r->len_a, r->text_b,
                                       (size_t)r->len_b, t, ids, ty, m, &err);
        diff += len != d->lengths[i] ||
                memcmp(ids, d->input_ids + i * t, (size_t)t * sizeof *ids) ||
                memcmp(ty, d->token_type_ids + i * t, (size_t)t * sizeof *ty) ||
                memcmp(m, d->attention_mask + i * t, (size_t)t * sizeof *m);
    }
    free(ids);
    free(ty);
    free(m);
    return diff;
}

static void test_synthetic(tokenizer_t *tok)
{
    struct dataset_spec spec = {.task = DATASET_TASK_SYNTHETIC, .split = DATASET_SPLIT_TRAIN,
                                .synthetic_n = 4000, .synthetic_noise = 0.05, .seed = 1234,
                                .max_seq_len = 32};
    struct dataset d, dev;
    struct kd_err err;
    if (!ok(dataset_load(&d, &spec, NULL, tok, &err) == 0, "synthetic train loads"))
        bail_out("%s", err.msg);
    ok(d.n == 4000 && d.max_seq_len == 32 && !d.pair && d.labels && !d.targets &&
       d.n_truncated == 0 && d.n_unk == 0 && d.map.num_labels == 2,
       "synthetic train: 4000 x 32, labels, nothing truncated, no [UNK]");
    ok(bad_rows(&d, tok) == 0, "synthetic rows: [CLS] a [SEP] padding, types 0, mask");
    struct synthetic_set s;
    synthetic_generate(&s, SYNTHETIC_SINGLE, SYNTHETIC_SPLIT_TRAIN, 4000, 1234, 0.05, &err);
    int64_t same = 0, flipped = 0;
    for (int64_t i = 0; i < d.n; i++)
        same += d.labels[i] == s.ex[i].label, flipped += d.labels[i] != s.ex[i].clean_label;
    ok(same == d.n && flipped == 200, "train labels carry the noise (%lld flipped)",
       (long long)flipped);
    synthetic_free(&s);

    spec.split = DATASET_SPLIT_DEV;
    spec.synthetic_n = 1000;
    ok(dataset_load(&dev, &spec, &d.map, tok, &err) == 0, "synthetic dev loads");
    synthetic_generate(&s, SYNTHETIC_SINGLE, SYNTHETIC_SPLIT_DEV, 1000, 1234, 0.0, &err);
    same = 0;
    for (int64_t i = 0; i < dev.n; i++)
        same += dev.labels[i] == s.ex[i].clean_label;
    ok(same == dev.n, "dev labels are clean (noise on train only)");
    synthetic_free(&s);
    dataset_free(&dev);
    dataset_free(&d);

    spec.task = DATASET_TASK_SYNTHETIC_PAIR;
    spec.split = DATASET_SPLIT_TRAIN;
    ok(dataset_load(&d, &spec, NULL, tok, &err) == 0 && d.pair && d.n_truncated == 0 &&
       d.n_unk == 0, "synthetic pair loads, nothing truncated at 32, no [UNK]");
    ok(bad_rows(&d, tok) == 0, "pair rows: [CLS] a [SEP] b [SEP], types 1 on b");
    ok(!strcmp(d.map.names[0], "inconsistent") && !strcmp(d.name, "synthetic_pair:train"),
       "pair label names and dataset name");
    dataset_free(&d);

    spec.tsv.problem = TSV_PROBLEM_REGRESSION;
    ok(dataset_load(&d, &spec, NULL, tok, &err) == -1 &&
       strstr(err.msg, "data.problem: expected \"classification\""),
       "regression refused for the synthetic task: %s", err.msg);
    spec.tsv.problem = TSV_PROBLEM_CLASSIFICATION;
    spec.tsv.num_labels = 3;
    ok(dataset_load(&d, &spec, NULL, tok, &err) == -1 &&
       strstr(err.msg, "expected 0 or 2 for the synthetic task, got 3"),
       "num_labels 3 refused: %s", err.msg);
    spec.tsv.num_labels = 0;
    spec.max_seq_len = 2;
    ok(dataset_load(&d, &spec, NULL, tok, &err) == -1 &&
       strstr(err.msg, "expected max_seq_len >= 3 for sentence pairs, got 2"),
       "max_seq_len too small: %s", err.msg);
}

static void test_tsv_fixtures(tokenizer_t *tok, const char *vocab_name)
{
    char path[4200];
    struct kd_err err;
    struct dataset d;
    struct dataset_spec spec = {.task = DATASET_TASK_TSV, .split = DATASET_SPLIT_TRAIN,
                                .max_seq_len = 12, .path = path};
    spec.tsv = (struct tsv_options){.text_a = "sentence1", .text_b = "sentence2",
                                    .label = "label"};
    snprintf(path, sizeof path, "%s/pair.tsv", fixture_dir);
    if (!ok(dataset_load(&d, &spec, NULL, tok, &err) == 0 && d.pair && d.n == 3 &&
            d.source_lines[2] == 4 && d.labels[1] == 1, "%s: pair.tsv loads", vocab_name))
        bail_out("%s", err.msg);
    ok(bad_rows(&d, tok) == 0, "%s: pair.tsv rows well formed (%lld truncated, %lld [UNK])",
       vocab_name, (long long)d.n_truncated, (long long)d.n_unk);
    struct tsv_table tb;
    tsv_read(&tb, path, &spec.tsv, NULL, &err);
    ok(rows_differing_from_encode(&d, &tb, tok) == 0,
       "%s: pair rows equal tokenizer_encode (longest-first truncation)", vocab_name);
    tsv_free(&tb);
    dataset_free(&d);

    /* a test file without labels, against a training map */
    struct label_map m;
    const char *names[] = {"0", "1"};
    label_map_from_names(&m, names, 2);
    m.kind = LABEL_KIND_INDEX;
    spec.tsv = (struct tsv_options){.text_a = "sentence", .label = "label",
                                    .labels_optional = 1};
    spec.split = DATASET_SPLIT_TEST;
    snprintf(path, sizeof path, "%s/test_nolabel.tsv", fixture_dir);
    ok(dataset_load(&d, &spec, &m, tok, &err) == 0 && d.n == 2 && !d.labels && !d.targets &&
       d.map.kind == LABEL_KIND_NONE, "%s: unlabelled test file loads", vocab_name);
    dataset_free(&d);
    label_map_free(&m);

    /* regression targets and skipped rows pass through */
    spec.tsv = (struct tsv_options){.text_a = "sentence", .label = "score",
                                    .problem = TSV_PROBLEM_REGRESSION};
    spec.split = DATASET_SPLIT_TRAIN;
    snprintf(path, sizeof path, "%s/regression.tsv", fixture_dir);
    ok(dataset_load(&d, &spec, NULL, tok, &err) == 0 && d.targets && !d.labels &&
       d.targets[0] == 3.8f && d.map.kind == LABEL_KIND_REGRESSION,
       "%s: regression targets", vocab_name);
    dataset_free(&d);
    spec.tsv = (struct tsv_options){.text_a = "sentence", .label = "label",
                                    .bad_rows = TSV_BAD_ROWS_SKIP};
    snprintf(path, sizeof path, "%s/mixed_bad.tsv", fixture_dir);
    ok(dataset_load(&d, &spec, NULL, tok, &err) == 0 && d.n == 6 && d.n_skipped == 5,
       "%s: skipped rows are counted in the dataset", vocab_name);
    dataset_free(&d);
    spec.tsv.bad_rows = TSV_BAD_ROWS_ERROR;
    ok(dataset_load(&d, &spec, NULL, tok, &err) == -1 && strstr(err.msg, "mixed_bad.tsv:3: "),
       "%s: reader errors come through with FILE:LINE", vocab_name);
}

static void test_sst2(void)
{
    const char *shared = getenv("KD_SHARED");
    char vocab[4096], train[4096], dev[4096];
    snprintf(vocab, sizeof vocab, "%s/data/vocab/bert-base-uncased-vocab.txt",
             shared ? shared : "");
    snprintf(train, sizeof train, "%s/data/glue/SST-2/train.tsv", shared ? shared : "");
    snprintf(dev, sizeof dev, "%s/data/glue/SST-2/dev.tsv", shared ? shared : "");
    if (!shared || access(vocab, R_OK) || access(train, R_OK) || access(dev, R_OK)) {
        skip(16, "bert-base-uncased vocab or SST-2 not found under $KD_SHARED/data");
        return;
    }
    tokenizer_t *tok;
    struct kd_err err;
    if (tokenizer_load(&tok, vocab, 1, &err))
        bail_out("%s", err.msg);
    test_tsv_fixtures(tok, "bert-base-uncased");

    struct dataset_spec spec = {.task = DATASET_TASK_TSV, .split = DATASET_SPLIT_TRAIN,
                                .path = train, .max_seq_len = 128};
    spec.tsv = (struct tsv_options){.text_a = "sentence", .label = "label"};
    struct dataset d, dv;
    double t0 = wall_seconds();
    int rc = dataset_load(&d, &spec, NULL, tok, &err);
    double dt = wall_seconds() - t0;
    ok(rc == 0 && d.n == 67349 && d.map.num_labels == 2,
       "SST-2 train tokenized at T = 128 in %.2f s (%lld examples)", dt, (long long)d.n);
    int64_t tokens = 0;
    int32_t longest = 0;
    for (int64_t i = 0; i < d.n; i++) {
        tokens += d.lengths[i];
        longest = d.lengths[i] > longest ? d.lengths[i] : longest;
    }
    ok(d.n_truncated == 0 && longest <= 128 && d.n_unk < 100,
       "SST-2 train: longest %d tokens, %lld tokens in all, %lld [UNK], none truncated",
       longest, (long long)tokens, (long long)d.n_unk);
    ok(bad_rows(&d, tok) == 0, "SST-2 train rows well formed");

    spec.path = dev;
    spec.split = DATASET_SPLIT_DEV;
    ok(dataset_load(&dv, &spec, &d.map, tok, &err) == 0 && dv.n == 872, "SST-2 dev loads");
    int64_t pos = 0;
    for (int64_t i = 0; i < dv.n; i++)
        pos += dv.labels[i];
    ok(pos == 444, "SST-2 dev: 444 positive (%lld)", (long long)pos);
    struct tsv_table tb;
    tsv_read(&tb, dev, &spec.tsv, &d.map, &err);
    ok(rows_differing_from_encode(&dv, &tb, tok) == 0, "SST-2 dev rows equal tokenizer_encode");
    dataset_free(&dv);

    /* truncation at T = 16: counted exactly, rows still match encode */
    spec.max_seq_len = 16;
    ok(dataset_load(&dv, &spec, &d.map, tok, &err) == 0, "SST-2 dev at T = 16");
    int64_t want = 0;
    struct tokenizer_ids ids = {0};
    for (int64_t i = 0; i < tb.n_rows; i++) {
        ids.n = 0;
        tokenizer_tokenize(tok, tb.rows[i].text_a, (size_t)tb.rows[i].len_a, &ids);
        want += ids.n + 2 > 16;
    }
    tokenizer_ids_free(&ids);
    ok(dv.n_truncated == want && want > 0, "truncated examples counted: %lld of 872 (want %lld)",
       (long long)dv.n_truncated, (long long)want);
    ok(rows_differing_from_encode(&dv, &tb, tok) == 0 && bad_rows(&dv, tok) == 0,
       "truncated rows equal tokenizer_encode and stay well formed");
    tsv_free(&tb);
    dataset_free(&dv);
    dataset_free(&d);
    tokenizer_free(tok);
}

static void test_shards_and_order(void)
{
    /* shards: contiguous, disjoint, complete, sizes within one */
    int good = 1;
    const int64_t sizes[] = {1, 7, 872, 67349};
    for (int k = 0; k < 4; k++)
        for (int r = 1; r <= 8; r++) {
            int64_t next = 0, lo = sizes[k], hi = 0;
            for (int i = 0; i < r; i++) {
                int64_t b, e;
                dataset_shard(sizes[k], i, r, &b, &e);
                good &= b == next && e >= b;
                lo = e - b < lo ? e - b : lo;
                hi = e - b > hi ? e - b : hi;
                next = e;
            }
            good &= next == sizes[k] && hi - lo <= 1;
        }
    ok(good, "shards tile [0, N) with sizes within one, for N in {1, 7, 872, 67349}, "
       "1..8 ranks");

    const int64_t n = 10007;
    int64_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    char *seen = calloc((size_t)n, 1);
    dataset_epoch_order(a, n, 42, 0);
    int perm = 1;
    for (int64_t i = 0; i < n; i++) {
        perm &= a[i] >= 0 && a[i] < n && !seen[a[i]];
        if (a[i] >= 0 && a[i] < n)
            seen[a[i]] = 1;
    }
    ok(perm, "epoch order is a permutation of 0..N-1");
    dataset_epoch_order(b, n, 42, 0);
    ok(memcmp(a, b, (size_t)n * sizeof *a) == 0, "same (seed, epoch): same order");
    dataset_epoch_order(c, n, 42, 1);
    int64_t fixed = 0, same_next = 0;
    for (int64_t i = 0; i < n; i++)
        fixed += a[i] == i, same_next += a[i] == c[i];
    ok(same_next < 10 && fixed < 10, "epoch 1 differs from epoch 0 (%lld positions equal), "
       "%lld fixed points", (long long)same_next, (long long)fixed);
    dataset_epoch_order(c, n, 43, 0);
    same_next = 0;
    for (int64_t i = 0; i < n; i++)
        same_next += a[i] == c[i];
    ok(same_next < 10, "another seed gives another order");
    /* what ranks see: the concatenated shards of the global order are the
     * global order, for any rank count */
    int same_all = 1;
    for (int r = 1; r <= 4; r++) {
        int64_t k = 0;
        for (int i = 0; i < r; i++) {
            int64_t beg, end;
            dataset_shard(n, i, r, &beg, &end);
            dataset_epoch_order(c, n, 42, 0); /* each rank computes it alone */
            for (int64_t j = beg; j < end; j++)
                same_all &= c[j] == a[k++];
        }
        same_all &= k == n;
    }
    ok(same_all, "1, 2, 3 and 4 ranks together visit the examples in the same order");
    free(a);
    free(b);
    free(c);
    free(seen);
}

int main(void)
{
    log_init(0, 1);
    log_set_level(LOG_LEVEL_ERROR); /* truncation/skip warnings are checked, not printed */
    find_fixtures();
    char dir[] = "/tmp/t_dataset.XXXXXX", vocab[64];
    if (!mkdtemp(dir))
        bail_out("mkdtemp failed");
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
    struct kd_err err;
    tokenizer_t *tok;
    if (synthetic_vocab_write(vocab, &err) || tokenizer_load(&tok, vocab, 1, &err))
        bail_out("%s", err.msg);
    test_synthetic(tok);
    test_tsv_fixtures(tok, "synthetic vocab");
    tokenizer_free(tok);
    unlink(vocab);
    rmdir(dir);
    test_sst2();
    test_shards_and_order();
    return done_testing();
}
