/* t_synthetic.c: properties of the embedded synthetic task (both kinds):
 * (a) balanced classes, (b) the labelling rule re-derived from the TEXT alone
 * matches every clean label while a bag-of-words naive Bayes does clearly
 * worse, (c) the noise rate is as requested, (d) determinism in the seed,
 * (e) every example tokenizes to whole words, no [UNK], within 32 tokens.
 * The rule below is written from the header's documentation, independently
 * of the generator's tables, so the two must agree. */
#include "kd/io/dataset.h"
#include "kd/io/synthetic.h"
#include "kd/core/log.h"
#include "kd/model/tokenizer.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_TRAIN 4000
#define N_DEV 1000
#define SEED 1234
#define NOISE 0.05

/* ---- the rule, from the text ------------------------------------------------ */

static const char *const positive_words[] = {
    "good", "great", "wonderful", "brilliant", "charming", "clever", "delightful",
    "enjoyable", "excellent", "fun", "moving", "superb", "triumph", "delight",
    "masterpiece", "joy", "gem", "success", NULL};
static const char *const negative_words[] = {
    "bad", "awful", "boring", "dull", "terrible", "weak", "clumsy", "tedious", "poor",
    "bland", "messy", "painful", "disaster", "mess", "failure", "bore", "letdown",
    "chore", NULL};

static int in_list(const char *w, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(w, list[i]) == 0)
            return 1;
    return 0;
}

#define MAX_WORDS 64
struct words {
    int n;
    char *w[MAX_WORDS];
    char buf[512];
};

static void split_words(struct words *ws, const char *text)
{
    snprintf(ws->buf, sizeof ws->buf, "%s", text);
    ws->n = 0;
    for (char *save = NULL, *t = strtok_r(ws->buf, " ", &save); t && ws->n < MAX_WORDS;
         t = strtok_r(NULL, " ", &save))
        ws->w[ws->n++] = t;
}

/* Polarity of words [b, e): the one sentiment word's prior, flipped by every
 * "not", "never" and "no". 0 when there is not exactly one sentiment word. */
static int clause_polarity(const struct words *ws, int b, int e)
{
    int prior = 0, found = 0, flips = 0;
    for (int i = b; i < e; i++) {
        const char *w = ws->w[i];
        if (in_list(w, positive_words))
            prior = 1, found++;
        else if (in_list(w, negative_words))
            prior = -1, found++;
        else if (!strcmp(w, "not") || !strcmp(w, "never") || !strcmp(w, "no"))
            flips++;
    }
    return found == 1 ? (flips % 2 ? -prior : prior) : 0;
}

/* Overall polarity of a sentence [b, e) by the contrast rule: the
 * deciding clause's polarity, frames included; 0 when it does not parse. */
static int sentence_polarity(const struct words *ws, int b, int e)
{
    int comma = -1;
    for (int i = b; i < e; i++)
        if (!strcmp(ws->w[i], ",")) {
            comma = i;
            break;
        }
    if (comma < 0)
        return clause_polarity(ws, b, e);
    const char *first = ws->w[b], *conj = ws->w[comma + 1];
    if (!strcmp(first, "although") || !strcmp(first, "though"))
        return clause_polarity(ws, comma + 1, e); /* main clause second */
    if (!strcmp(conj, "but") || !strcmp(conj, "yet"))
        return clause_polarity(ws, comma + 2, e);
    if (!strcmp(conj, "although") || !strcmp(conj, "though"))
        return clause_polarity(ws, b, comma);
    return 0;
}

/* The rule's label from the text, or -1 when the text does not parse. */
static int rule_label(int kind, const char *a, const char *b)
{
    struct words wa, wb;
    split_words(&wa, a);
    if (kind == SYNTHETIC_SINGLE) {
        int s = 0, e = wa.n;
        if (e > 0 && !strcmp(wa.w[e - 1], "."))
            e--;
        if (e > 2 && !strcmp(wa.w[1], ",") &&
            (!strcmp(wa.w[0], "frankly") || !strcmp(wa.w[0], "honestly") ||
             !strcmp(wa.w[0], "well")))
            s = 2;
        int p = sentence_polarity(&wa, s, e);
        return p == 0 ? -1 : p > 0;
    }
    /* pair: a verdict "overall|altogether it ..." on the premise */
    split_words(&wb, b);
    if (wb.n < 3 || (strcmp(wb.w[0], "overall") && strcmp(wb.w[0], "altogether")) ||
        strcmp(wb.w[1], "it"))
        return -1;
    int hyp = clause_polarity(&wb, 2, wb.n);
    int target = sentence_polarity(&wa, 0, wa.n);
    if (hyp == 0 || target == 0)
        return -1;
    return hyp == target;
}

/* ---- bag-of-words naive Bayes ----------------------------------------------- */

/* Features: word ids (premise and hypothesis words apart for pairs). */
static int word_id(const char *w)
{
    int32_t v = synthetic_vocab_size();
    for (int32_t i = 0; i < v; i++)
        if (!strcmp(synthetic_vocab_token(i), w))
            return i;
    return -1;
}

/* texts: bit 0 the first text, bit 1 the second (pairs). */
static int features(const struct synthetic_example *x, int bigrams, unsigned texts_used,
                    int *f, int cap)
{
    int n = 0, v = synthetic_vocab_size();
    const char *texts[2] = {x->text_a, x->text_b};
    for (int t = 0; t < 2 && texts[t]; t++) {
        if (!(texts_used & (1u << t)))
            continue;
        struct words ws;
        split_words(&ws, texts[t]);
        int prev = v; /* sentence start */
        for (int i = 0; i < ws.n && n < cap; i++) {
            int id = word_id(ws.w[i]);
            if (id < 0)
                return -1;
            f[n++] = bigrams ? t * (v + 1) * (v + 1) + prev * (v + 1) + id : t * v + id;
            prev = id;
        }
    }
    return n;
}

/* Trains multinomial naive Bayes (add-one smoothing) on train's CLEAN labels
 * with the words of the texts in texts_used, and returns the accuracy on
 * dev's clean labels; acc_by_tag receives the accuracy on dev examples with
 * and without a tag. */
static double naive_bayes(const struct synthetic_set *train, const struct synthetic_set *dev,
                          int bigrams, unsigned texts_used, uint32_t tag,
                          double acc_by_tag[2])
{
    int v = synthetic_vocab_size();
    size_t nf = bigrams ? 2 * (size_t)(v + 1) * (size_t)(v + 1) : 2 * (size_t)v;
    double *count = calloc(2 * nf, sizeof *count), total[2] = {0, 0}, prior[2] = {0, 0};
    int f[MAX_WORDS * 2];
    for (int64_t i = 0; i < train->n; i++) {
        int c = train->ex[i].clean_label;
        int n = features(&train->ex[i], bigrams, texts_used, f, MAX_WORDS * 2);
        prior[c] += 1;
        for (int k = 0; k < n; k++)
            count[(size_t)c * nf + (size_t)f[k]] += 1, total[c] += 1;
    }
    int64_t right = 0, n_tag[2] = {0, 0}, right_tag[2] = {0, 0};
    for (int64_t i = 0; i < dev->n; i++) {
        int n = features(&dev->ex[i], bigrams, texts_used, f, MAX_WORDS * 2);
        double score[2];
        for (int c = 0; c < 2; c++) {
            score[c] = log(prior[c] / (double)train->n);
            for (int k = 0; k < n; k++)
                score[c] += log((count[(size_t)c * nf + (size_t)f[k]] + 1.0) /
                                (total[c] + (double)nf));
        }
        int pred = score[1] > score[0], ok_ = pred == dev->ex[i].clean_label;
        int has = (dev->ex[i].tags & tag) != 0; /* any of the tag bits */
        right += ok_;
        n_tag[has]++;
        right_tag[has] += ok_;
    }
    for (int h = 0; h < 2; h++)
        acc_by_tag[h] = n_tag[h] ? (double)right_tag[h] / (double)n_tag[h] : NAN;
    free(count);
    return (double)right / (double)dev->n;
}

/* ---- checks ------------------------------------------------------------------ */

static void check_kind(int kind, tokenizer_t *tok_uncased, tokenizer_t *tok_cased)
{
    const char *name = synthetic_kind_name(kind);
    struct kd_err err;
    struct synthetic_set train, dev, again, other, small;
    ok(synthetic_generate(&train, kind, SYNTHETIC_SPLIT_TRAIN, N_TRAIN, SEED, NOISE, &err) == 0,
       "%s: %d training examples", name, N_TRAIN);
    synthetic_generate(&dev, kind, SYNTHETIC_SPLIT_DEV, N_DEV, SEED, NOISE, &err);

    /* (a) balance */
    int64_t pos = 0, pos_noisy = 0;
    for (int64_t i = 0; i < train.n; i++)
        pos += train.ex[i].clean_label, pos_noisy += train.ex[i].label;
    double frac = (double)pos / (double)train.n;
    ok(fabs(frac - 0.5) < 0.03, "%s: (a) classes balanced: %.1f%% label 1 (clean), %.1f%% "
       "(noisy)", name, 100 * frac, 100.0 * (double)pos_noisy / (double)train.n);
    int64_t dpos = 0;
    for (int64_t i = 0; i < dev.n; i++)
        dpos += dev.ex[i].clean_label;
    ok(fabs((double)dpos / (double)dev.n - 0.5) < 0.04, "%s: (a) dev balanced: %.1f%% label 1",
       name, 100.0 * (double)dpos / (double)dev.n);

    /* (b) the rule from the text explains every clean label */
    int64_t rule_right = 0, unparsed = 0;
    for (int pass = 0; pass < 2; pass++) {
        const struct synthetic_set *s = pass ? &dev : &train;
        for (int64_t i = 0; i < s->n; i++) {
            int r = rule_label(kind, s->ex[i].text_a, s->ex[i].text_b);
            unparsed += r < 0;
            rule_right += r == s->ex[i].clean_label;
            if (r != s->ex[i].clean_label && rule_right + unparsed < 5)
                diag("rule %d, clean label %d: %s | %s", r, s->ex[i].clean_label,
                     s->ex[i].text_a, s->ex[i].text_b ? s->ex[i].text_b : "");
        }
    }
    ok(rule_right == train.n + dev.n, "%s: (b) the documented rule, applied to the text, "
       "gives every clean label (%lld/%lld, %lld unparsed)", name, (long long)rule_right,
       (long long)(train.n + dev.n), (long long)unparsed);
    double by_neg[2], by_contrast[2], by_bi[2], by_plain[2];
    double bow = naive_bayes(&train, &dev, 0, 3, SYNTHETIC_TAG_NEGATION, by_neg);
    naive_bayes(&train, &dev, 0, 3, SYNTHETIC_TAG_CONTRAST, by_contrast);
    naive_bayes(&train, &dev, 0, 3,
                SYNTHETIC_TAG_NEGATION | SYNTHETIC_TAG_FRAME | SYNTHETIC_TAG_CONTRAST,
                by_plain);
    double bigram = naive_bayes(&train, &dev, 1, 3, SYNTHETIC_TAG_NEGATION, by_bi);
    ok(bow < 0.80, "%s: (b) bag-of-words naive Bayes on clean labels: %.1f%% dev accuracy "
       "(rule: 100%%); without/with negation %.1f%%/%.1f%%, without/with contrast "
       "%.1f%%/%.1f%%", name, 100 * bow, 100 * by_neg[0], 100 * by_neg[1],
       100 * by_contrast[0], 100 * by_contrast[1]);
    diag("%s: bag-of-words on plain examples (no negation, frame or contrast): %.1f%%, "
         "on the others %.1f%%", name, 100 * by_plain[0], 100 * by_plain[1]);
    diag("%s: bigram naive Bayes %.1f%% (without/with negation %.1f%%/%.1f%%)", name,
         100 * bigram, 100 * by_bi[0], 100 * by_bi[1]);
    if (kind == SYNTHETIC_PAIR) {
        /* the label is the agreement of the two texts: word statistics of
         * either text alone are no better than a coin; the rule applied to
         * the premise alone (label = its polarity) is right exactly where
         * the verdict is positive (60% plain + half of the other 40%), to
         * the hypothesis alone half the time */
        double unused[2];
        double only_a = naive_bayes(&train, &dev, 1, 1, 0, unused);
        double only_b = naive_bayes(&train, &dev, 1, 2, 0, unused);
        ok(only_a < 0.58 && only_b < 0.58, "%s: (b) neither text alone tells the label: "
           "bigram naive Bayes on the premise %.1f%%, on the hypothesis %.1f%%", name,
           100 * only_a, 100 * only_b);
        int64_t right_a = 0, right_b = 0;
        for (int64_t i = 0; i < train.n; i++) {
            struct words wa, wb;
            split_words(&wa, train.ex[i].text_a);
            split_words(&wb, train.ex[i].text_b);
            int c = train.ex[i].clean_label;
            right_a += (sentence_polarity(&wa, 0, wa.n) > 0) == c;
            right_b += (clause_polarity(&wb, 2, wb.n) > 0) == c;
        }
        double ra = (double)right_a / (double)train.n, rb = (double)right_b / (double)train.n;
        ok(fabs(ra - 0.80) < 0.03 && fabs(rb - 0.5) < 0.03, "%s: (b) the rule on the premise "
           "alone gives %.1f%% (80%% expected), on the hypothesis alone %.1f%% (50%%)", name,
           100 * ra, 100 * rb);
    }
    int64_t tagged[6] = {0};
    for (int64_t i = 0; i < train.n; i++)
        for (int b = 0; b < 6; b++)
            tagged[b] += (train.ex[i].tags >> b) & 1;
    diag("%s: constructions in train: negation %.0f%%, frame %.0f%%, double negation %.0f%%, "
         "contrast %.0f%%, echo %.0f%%", name, 100.0 * (double)tagged[0] / N_TRAIN,
         100.0 * (double)tagged[1] / N_TRAIN, 100.0 * (double)tagged[2] / N_TRAIN,
         100.0 * (double)tagged[3] / N_TRAIN, 100.0 * (double)tagged[4] / N_TRAIN);

    /* (c) noise */
    int64_t flipped = 0, tagged_flip = 0;
    for (int64_t i = 0; i < train.n; i++) {
        flipped += train.ex[i].label != train.ex[i].clean_label;
        tagged_flip += (train.ex[i].tags & SYNTHETIC_TAG_FLIPPED) != 0;
    }
    ok(flipped == 200 && train.n_flipped == 200 && tagged_flip == 200,
       "%s: (c) noise %.2f flips exactly %lld of %d labels (%.2f%%)", name, NOISE,
       (long long)flipped, N_TRAIN, 100.0 * (double)flipped / N_TRAIN);

    /* (d) determinism */
    synthetic_generate(&again, kind, SYNTHETIC_SPLIT_TRAIN, N_TRAIN, SEED, NOISE, &err);
    synthetic_generate(&other, kind, SYNTHETIC_SPLIT_TRAIN, N_TRAIN, SEED + 1, NOISE, &err);
    synthetic_generate(&small, kind, SYNTHETIC_SPLIT_TRAIN, 100, SEED, 0.0, &err);
    int64_t same = 0, diff_seed = 0, diff_split = 0, prefix = 0;
    for (int64_t i = 0; i < train.n; i++) {
        const struct synthetic_example *x = &train.ex[i], *y = &again.ex[i], *z = &other.ex[i];
        same += !strcmp(x->text_a, y->text_a) && x->label == y->label &&
                (!x->text_b || !strcmp(x->text_b, y->text_b));
        diff_seed += strcmp(x->text_a, z->text_a) != 0;
        if (i < dev.n)
            diff_split += strcmp(x->text_a, dev.ex[i].text_a) != 0;
        if (i < small.n)
            prefix += !strcmp(x->text_a, small.ex[i].text_a) &&
                      x->clean_label == small.ex[i].clean_label;
    }
    ok(same == train.n, "%s: (d) same seed gives identical texts and labels", name);
    ok(diff_seed > train.n * 95 / 100, "%s: (d) seed+1 changes %.1f%% of the texts", name,
       100.0 * (double)diff_seed / (double)train.n);
    ok(diff_split > dev.n * 95 / 100, "%s: (d) dev differs from train (%.1f%% of texts)",
       name, 100.0 * (double)diff_split / (double)dev.n);
    ok(prefix == small.n, "%s: (d) example i does not depend on the set size", name);

    /* (e) tokenization: one vocabulary token per word, no [UNK], fits 32 */
    struct dataset d, dc;
    int rc = dataset_from_synthetic(&d, &train, tok_uncased, SYNTHETIC_MAX_TOKENS, &err);
    rc |= dataset_from_synthetic(&dc, &train, tok_cased, SYNTHETIC_MAX_TOKENS, &err);
    ok(rc == 0, "%s: tokenized with the synthetic vocabulary", name);
    int32_t longest = 0;
    int64_t whole = 0;
    for (int64_t i = 0; i < d.n; i++) {
        struct words wa, wb;
        split_words(&wa, train.ex[i].text_a);
        int words = wa.n + 2;
        if (train.ex[i].text_b) {
            split_words(&wb, train.ex[i].text_b);
            words += wb.n + 1;
        }
        whole += d.lengths[i] == words;
        if (d.lengths[i] > longest)
            longest = d.lengths[i];
    }
    ok(d.n_unk == 0 && d.n_truncated == 0 && longest <= SYNTHETIC_MAX_TOKENS,
       "%s: (e) no [UNK], nothing truncated, longest example %d <= %d tokens", name, longest,
       SYNTHETIC_MAX_TOKENS);
    ok(whole == d.n, "%s: (e) every word is one vocabulary token (%lld/%lld examples)", name,
       (long long)whole, (long long)d.n);
    ok(memcmp(d.input_ids, dc.input_ids, (size_t)(d.n * d.max_seq_len) * sizeof(int32_t)) == 0,
       "%s: cased and uncased tokenizers give the same ids", name);
    ok(d.labels && d.map.num_labels == 2 && !strcmp(d.map.names[1],
       synthetic_label_name(kind, 1)), "%s: labels and names (%s, %s)", name,
       d.map.names[0], d.map.names[1]);
    dataset_free(&d);
    dataset_free(&dc);
    synthetic_free(&train);
    synthetic_free(&dev);
    synthetic_free(&again);
    synthetic_free(&other);
    synthetic_free(&small);
}

int main(void)
{
    log_init(0, 1);
    log_set_level(LOG_LEVEL_ERROR);
    struct kd_err err;

    /* vocabulary */
    int32_t v = synthetic_vocab_size();
    ok(v > 100 && v < 256, "vocabulary of %d tokens", v);
    ok(!strcmp(synthetic_vocab_token(0), "[PAD]") && !strcmp(synthetic_vocab_token(1), "[UNK]") &&
       !strcmp(synthetic_vocab_token(2), "[CLS]") && !strcmp(synthetic_vocab_token(3), "[SEP]") &&
       !strcmp(synthetic_vocab_token(4), "[MASK]"), "[PAD] [UNK] [CLS] [SEP] [MASK] = 0..4");
    int dup = 0;
    for (int32_t i = 0; i < v; i++)
        for (int32_t j = 0; j < i; j++)
            dup += !strcmp(synthetic_vocab_token(i), synthetic_vocab_token(j));
    ok(dup == 0 && synthetic_vocab_token(v) == NULL, "tokens are unique");
    char dir[] = "/tmp/t_synthetic.XXXXXX", path[64];
    if (!mkdtemp(dir))
        bail_out("mkdtemp failed");
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    ok(synthetic_vocab_write(path, &err) == 0, "vocab.txt written");
    tokenizer_t *tok = NULL, *tok_cased = NULL;
    ok(tokenizer_load(&tok, path, 1, &err) == 0 && tokenizer_load(&tok_cased, path, 0, &err) == 0,
       "the WordPiece tokenizer loads it");
    if (!tok || !tok_cased)
        bail_out("%s", err.msg);
    ok(tokenizer_vocab_size(tok) == v && tokenizer_special_id(tok, TOKENIZER_SPECIAL_PAD) == 0 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_UNK) == 1 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_CLS) == 2 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_SEP) == 3 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_MASK) == 4, "special ids as written");

    check_kind(SYNTHETIC_SINGLE, tok, tok_cased);
    check_kind(SYNTHETIC_PAIR, tok, tok_cased);

    /* the length bound over many more examples: words + specials <= 32 */
    for (int kind = SYNTHETIC_SINGLE; kind <= SYNTHETIC_PAIR; kind++) {
        struct synthetic_set big;
        synthetic_generate(&big, kind, SYNTHETIC_SPLIT_TRAIN, 200000, 77, 0.0, &err);
        int longest = 0;
        for (int64_t i = 0; i < big.n; i++) {
            struct words wa, wb;
            split_words(&wa, big.ex[i].text_a);
            int len = wa.n + 2;
            if (big.ex[i].text_b) {
                split_words(&wb, big.ex[i].text_b);
                len += wb.n + 1;
            }
            if (len > longest)
                longest = len;
        }
        ok(longest <= SYNTHETIC_MAX_TOKENS, "%s: longest of 200000 examples is %d <= %d "
           "tokens", synthetic_kind_name(kind), longest, SYNTHETIC_MAX_TOKENS);
        synthetic_free(&big);
    }

    /* argument errors and the noise extremes */
    struct synthetic_set s;
    ok(synthetic_generate(&s, SYNTHETIC_SINGLE, 0, 10, 1, 0.7, &err) == -1 &&
       strstr(err.msg, "expected data.synthetic_noise in [0, 0.5], got 0.7"),
       "noise above 0.5 is refused: %s", err.msg);
    ok(synthetic_generate(&s, 7, 0, 10, 1, 0.0, &err) == -1, "unknown kind refused: %s",
       err.msg);
    synthetic_generate(&s, SYNTHETIC_SINGLE, 0, 1001, 9, 0.5, &err);
    int64_t flips = 0;
    for (int64_t i = 0; i < s.n; i++)
        flips += s.ex[i].label != s.ex[i].clean_label;
    ok(flips == 501 && s.n_flipped == 501, "noise 0.5 of 1001 flips round(500.5) = 501 (%lld)",
       (long long)flips);
    synthetic_free(&s);

    tokenizer_free(tok);
    tokenizer_free(tok_cased);
    unlink(path);
    rmdir(dir);
    return done_testing();
}
