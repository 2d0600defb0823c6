/* t_synthetic_learn.c: the synthetic task is learnable, and learnable
 * enough to leave room for distillation. The demo teacher (4 layers of 128)
 * trained from scratch must reach a high dev accuracy; the demo student (2
 * layers of 64) trained from scratch on the same data with the same recipe
 * and the budget of a distillation stage, without distillation, must stay
 * clearly below it: that gap is what distillation is meant to close. The
 * measurements behind the thresholds are in docs/synthetic-task.md.
 *
 * Recipe (a finetune stage's defaults, lr 3e-4): dropout 0.1, AdamW (betas
 * 0.9/0.999, eps 1e-8, weight decay 0.01 except biases and LayerNorm),
 * linear warmup over 10% of the steps then linear decay to 0, global-norm
 * clipping at 1.0, batches of 32 in a fresh shuffle per epoch
 * (dataset_epoch_order), mean cross-entropy. A batch runs as micro-batches
 * of MB rows of similar length, each cut to its longest row: the gradient
 * is the whole batch's (the padding is masked), only less padding is
 * computed. Dev labels are clean; train labels carry 5% noise.
 *
 * One process, one BLAS thread: the program re-executes itself with
 * OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1 unless both are set so,
 * which makes a run deterministic for a given build.
 *
 * Without arguments it runs the make-check configuration (CHECK_* below,
 * single-sentence task) and asserts the thresholds; `--check pair` does the
 * same for the pair task with its own budget (CHECK_PAIR_*, about 4 minutes
 * on one core, not part of make check). With other arguments it only
 * trains and reports, to reproduce the measurements of the docs, e.g.
 *   t_synthetic_learn --kind pair --train 16000 --lr 3e-4 --seed 7 \
 *       --model teacher=4x128x4x512@8 --model student=2x64x4x256@4
 * Options: --check single|pair (alone), --kind single|pair (default both),
 * --train N, --dev N, --epochs E
 * (for models without their own), --lr X, --batch B, --seed S, --noise X,
 * --dropout X, --warmup FRACTION, --beta2 X, --weight-decay X, --verbose 1
 * (loss and dev accuracy after every epoch), --model NAME=LxCxNHxF[@EPOCHS]
 * (repeatable: layers x hidden x heads x FFN). */
#include "kd/core/log.h"
#include "kd/io/dataset.h"
#include "kd/io/synthetic.h"
#include "kd/model/bert.h"
#include "kd/model/hf_config.h"
#include "kd/model/lr_schedule.h"
#include "kd/model/optim.h"
#include "kd/model/tokenizer.h"
#include "../tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEQ_LEN 32      /* the demo's data.max_seq_len */
#define MAX_MODELS 8

/* ---- the make-check configuration ---------------------------------------- */
/* Measured values and the reasoning behind the thresholds are in
 * docs/synthetic-task.md. */
#define CHECK_TRAIN 16000
#define CHECK_DEV 1000
#define CHECK_LR 3e-4
#define CHECK_SEED 1234
#define CHECK_TEACHER "teacher=4x128x4x512@4"
#define CHECK_STUDENT "student=2x64x4x256@3"
#define CHECK_TEACHER_MIN 0.90  /* dev accuracy the teacher must reach */
#define CHECK_GAP_MIN 0.03      /* teacher minus student without KD, at least */
#define CHECK_STUDENT_MIN 0.65  /* the student still learns (a sanity floor) */
/* The pair task (same data size, recipe and thresholds) needs twice the
 * teacher epochs: it first learns to read the premise, then to relate the
 * verdict to it. */
#define CHECK_PAIR_TEACHER "teacher=4x128x4x512@8"
#define CHECK_PAIR_STUDENT "student=2x64x4x256@4"

struct model_size {
    char name[32];
    int64_t layers, hidden, heads, ffn;
    double epochs;             /* 0: the run's */
};

struct run_cfg {
    int kind;                  /* enum synthetic_kind */
    int64_t n_train, n_dev;
    double epochs, lr, noise, dropout, warmup, beta2, weight_decay;
    int64_t batch;
    int verbose;               /* 1: loss and dev accuracy after every epoch */
    uint64_t seed;
};

struct result {
    double acc;                /* dev accuracy */
    double acc_tag[6];         /* per synthetic_tag bit; < 0 if none */
    double acc_plain;          /* dev examples with no tag */
    double train_loss;         /* mean loss of the last epoch */
    double seconds;            /* training only */
    int64_t params;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Micro-batch size: a training batch is run as micro-batches of similar
 * lengths, which saves padding work and gives the same gradient. */
#define MB 8

/* Insertion sort of rows[0..n) by length (stable). */
static void sort_by_length(int64_t *rows, int64_t n, const int32_t *lengths)
{
    for (int64_t i = 1; i < n; i++) {
        int64_t r = rows[i], j = i;
        for (; j > 0 && lengths[rows[j - 1]] > lengths[r]; j--)
            rows[j] = rows[j - 1];
        rows[j] = r;
    }
}

/* Rows order[0..b) of d copied densely, cut to their longest row. */
struct batch_buf {
    int32_t *ids, *types, *mask, *labels;
};

static int64_t gather(struct batch_buf *bb, const struct dataset *d, const int64_t *rows,
                      int64_t b)
{
    const int64_t T = d->max_seq_len;
    int64_t t = 1;
    for (int64_t i = 0; i < b; i++)
        if (d->lengths[rows[i]] > t)
            t = d->lengths[rows[i]];
    for (int64_t i = 0; i < b; i++) {
        const int64_t r = rows[i];
        memcpy(bb->ids + i * t, d->input_ids + r * T, (size_t)t * sizeof *bb->ids);
        memcpy(bb->types + i * t, d->token_type_ids + r * T, (size_t)t * sizeof *bb->types);
        memcpy(bb->mask + i * t, d->attention_mask + r * T, (size_t)t * sizeof *bb->mask);
        bb->labels[i] = d->labels[r];
    }
    return t;
}

/* Accuracy against the clean labels over the examples carrying tag (a
 * synthetic_tag bit), or over those without any tag (TAG_NONE), or over all
 * (TAG_ALL); -1 when there are none. */
#define TAG_NONE 0u
#define TAG_ALL (~0u)
static double accuracy_of(const int32_t *pred, const struct synthetic_set *s, uint32_t tag)
{
    int64_t n = 0, right = 0;
    for (int64_t i = 0; i < s->n; i++) {
        uint32_t tags = s->ex[i].tags & ~(uint32_t)SYNTHETIC_TAG_FLIPPED;
        if (tag == TAG_NONE ? tags != 0 : tag != TAG_ALL && !(tags & tag))
            continue;
        n++;
        right += pred[i] == s->ex[i].clean_label;
    }
    return n ? (double)right / (double)n : -1.0;
}

/* Eval-mode predictions (argmax) of every row of d, in batches of B. */
static void predict(struct bert_model *m, const struct dataset *d, struct batch_buf *bb,
                    int64_t B, int32_t *pred)
{
    int64_t *rows = malloc((size_t)B * sizeof *rows);
    for (int64_t pos = 0; pos < d->n; pos += B) {
        const int64_t b = pos + B <= d->n ? B : d->n - pos;
        for (int64_t i = 0; i < b; i++)
            rows[i] = pos + i;
        const int64_t t = gather(bb, d, rows, b);
        struct bert_batch batch = {.B = b, .T = t, .input_ids = bb->ids,
                                   .token_type_ids = bb->types, .attention_mask = bb->mask};
        bert_forward(m, &batch);
        const float *lg = bert_logits(m);
        for (int64_t i = 0; i < b; i++)
            pred[pos + i] = lg[2 * i + 1] > lg[2 * i] ? 1 : 0;
    }
    free(rows);
}

/* Trains one model from scratch on train and evaluates it on dev. */
static void train_eval(const struct model_size *ms, const struct run_cfg *rc,
                       int32_t vocab_size, const struct dataset *train,
                       const struct dataset *dev, const struct synthetic_set *dev_set,
                       struct result *res)
{
    struct kd_err err;
    struct bert_config cfg;
    hf_config_defaults(&cfg);
    cfg.vocab_size = vocab_size;
    cfg.hidden_size = ms->hidden;
    cfg.num_hidden_layers = ms->layers;
    cfg.num_attention_heads = ms->heads;
    cfg.intermediate_size = ms->ffn;
    cfg.max_position_embeddings = 64;
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = rc->dropout;
    cfg.num_labels = SYNTHETIC_NUM_LABELS;
    hf_config_init_layers(&cfg);
    if (hf_config_validate(&cfg, ms->name, &err))
        bail_out("%s", err.msg);
    const int64_t B = rc->batch, T = train->max_seq_len;
    struct bert_opts o = {.B = B, .T = T, .heads = BERT_HEAD_CLASSIFIER, .backward = 1,
                          .param_grads = 1, .optimizer = 1, .seed = rc->seed};
    struct bert_model m;
    if (bert_init(&m, &cfg, &o, &err))
        bail_out("%s", err.msg);
    bert_init_random(&m, rc->seed, 0.02f);
    float *params = (float *)(void *)m.params_arena.base;
    float *grads = (float *)(void *)m.grads_arena.base;
    struct optim_segment *segs = bert_optim_segments(&m);
    struct optim_config ocfg;
    optim_config_default(&ocfg, OPTIM_KIND_ADAMW);
    ocfg.beta2 = rc->beta2;
    ocfg.weight_decay = rc->weight_decay;
    struct optim opt;
    if (optim_init(&opt, &ocfg, segs, (size_t)m.ptab.n, m.adam_m, m.adam_v, m.ptab.floats,
                   &err))
        bail_out("%s", err.msg);

    const int64_t N = train->n, per_epoch = (N + B - 1) / B;
    const double epochs = ms->epochs > 0 ? ms->epochs : rc->epochs;
    const int64_t total = (int64_t)(epochs * (double)per_epoch + 0.5);
    struct lr_schedule sched = {LR_SCHEDULE_LINEAR, rc->lr, 0.0,
                                lr_schedule_warmup_from_fraction(rc->warmup, total), total};
    struct batch_buf bb = {malloc((size_t)(B * T) * sizeof(int32_t)),
                           malloc((size_t)(B * T) * sizeof(int32_t)),
                           malloc((size_t)(B * T) * sizeof(int32_t)),
                           malloc((size_t)B * sizeof(int32_t))};
    int64_t *order = malloc((size_t)N * sizeof *order);
    int64_t *rows = malloc((size_t)B * sizeof *rows);
    double t0 = now(), loss_sum = 0.0;
    int64_t loss_n = 0;
    for (int64_t step = 0; step < total; step++) {
        const int64_t epoch = step / per_epoch, pos = (step % per_epoch) * B;
        if (pos == 0) {
            dataset_epoch_order(order, N, rc->seed, epoch);
            loss_sum = 0.0, loss_n = 0;
        }
        const int64_t b = pos + B <= N ? B : N - pos;
        /* the batch's rows by length, in micro-batches of MB, each cut to
         * its longest row; the gradients add up to the whole batch's */
        memcpy(rows, order + pos, (size_t)b * sizeof *rows);
        sort_by_length(rows, b, train->lengths);
        bert_zero_grads(&m);
        for (int64_t j = 0; j < b; j += MB) {
            const int64_t mb = j + MB <= b ? MB : b - j;
            const int64_t t = gather(&bb, train, rows + j, mb);
            struct bert_batch batch = {.B = mb, .T = t, .input_ids = bb.ids,
                                       .token_type_ids = bb.types, .attention_mask = bb.mask,
                                       .train = 1,
                                       .first_example = (uint64_t)(epoch * N + pos + j),
                                       .step = (uint64_t)step};
            bert_forward(&m, &batch);
            loss_sum += bert_loss_classification(&m, bb.labels, m.ga.dlogits,
                                                 (float)mb / (float)b) *
                        (double)mb / (double)b;
            struct bert_grad_in gin;
            memset(&gin, 0, sizeof gin);
            gin.dlogits = m.ga.dlogits;
            bert_backward(&m, &gin);
        }
        loss_n++;
        struct optim_grad_info gi;
        if (optim_grad_prepare(grads, m.ptab.floats, segs, (size_t)m.ptab.n, 1.0, 1.0, NULL,
                               &gi, &err))
            bail_out("%s", err.msg);
        if (!(gi.norm == gi.norm) || gi.norm > 1e30)
            bail_out("%s: non-finite gradient norm at step %lld", ms->name, (long long)step);
        optim_step(&opt, params, grads, lr_schedule_at(&sched, opt.step), gi.grad_scale);
        if (rc->verbose && ((step + 1) % per_epoch == 0 || step + 1 == total)) {
            int32_t *p = malloc((size_t)dev->n * sizeof *p);
            predict(&m, dev, &bb, B, p);
            diag("  %s epoch %lld: train loss %.4f, dev %.1f%%", ms->name,
                 (long long)epoch + 1, loss_sum / (double)loss_n,
                 100.0 * accuracy_of(p, dev_set, TAG_ALL));
            free(p);
        }
    }
    res->seconds = now() - t0;
    res->train_loss = loss_n ? loss_sum / (double)loss_n : 0.0;
    res->params = (int64_t)m.ptab.floats;

    int32_t *pred = malloc((size_t)dev->n * sizeof *pred);
    predict(&m, dev, &bb, B, pred);
    res->acc = accuracy_of(pred, dev_set, TAG_ALL);
    for (int k = 0; k < 6; k++)
        res->acc_tag[k] = accuracy_of(pred, dev_set, 1u << k);
    res->acc_plain = accuracy_of(pred, dev_set, TAG_NONE);
    free(pred), free(order), free(rows);
    free(bb.ids), free(bb.types), free(bb.mask), free(bb.labels);
    free(segs);
    bert_free(&m);
}

static void report(const struct model_size *ms, const struct run_cfg *rc,
                   const struct result *r)
{
    diag("%s %lldx%lldx%lldx%lld (%.2fM params), %s, %lld train, %.1f epochs: dev %.1f%% "
         "(%.1f s, last-epoch loss %.3f)",
         ms->name, (long long)ms->layers, (long long)ms->hidden, (long long)ms->heads,
         (long long)ms->ffn, (double)r->params / 1e6, synthetic_kind_name(rc->kind),
         (long long)rc->n_train, ms->epochs > 0 ? ms->epochs : rc->epochs, 100.0 * r->acc,
         r->seconds, r->train_loss);
    static const char *const tag_names[] = {"negation", "frame", "double-neg", "contrast",
                                            "echo"};
    char line[256];
    int n = snprintf(line, sizeof line, "  plain %.1f%%", 100.0 * r->acc_plain);
    for (int k = 0; k < 5; k++)
        if (r->acc_tag[k] >= 0.0 && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, ", %s %.1f%%", tag_names[k],
                          100.0 * r->acc_tag[k]);
    diag("%s", line);
}

static int parse_size(struct model_size *ms, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || (size_t)(eq - arg) >= sizeof ms->name)
        return -1;
    memcpy(ms->name, arg, (size_t)(eq - arg));
    ms->name[eq - arg] = '\0';
    long long l, c, h, f;
    if (sscanf(eq + 1, "%lldx%lldx%lldx%lld", &l, &c, &h, &f) != 4 || l < 1 || c < 1 ||
        h < 1 || f < 1 || c % h)
        return -1;
    ms->layers = l, ms->hidden = c, ms->heads = h, ms->ffn = f;
    const char *at = strchr(eq, '@');
    ms->epochs = at ? atof(at + 1) : 0.0;
    return at && !(ms->epochs > 0) ? -1 : 0;
}

static _Noreturn void usage(const char *bad)
{
    fprintf(stderr, "t_synthetic_learn: bad argument '%s'\n"
                    "usage: t_synthetic_learn [--check single|pair] [--kind single|pair] "
                    "[--train N] [--dev N] "
                    "[--epochs E] [--lr X] [--batch B] [--seed S] [--noise X] [--dropout X] "
                    "[--warmup F] [--beta2 X] [--weight-decay X] [--verbose 1] "
                    "[--model NAME=LxCxNHxF[@EPOCHS]]...\n", bad);
    exit(2);
}

/* One BLAS thread, whatever the environment says: re-executes once. */
static void single_thread(char **argv)
{
    const char *a = getenv("OPENBLAS_NUM_THREADS"), *b = getenv("OMP_NUM_THREADS");
    if (a && b && strcmp(a, "1") == 0 && strcmp(b, "1") == 0)
        return;
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv);
    /* no /proc: carry on; the thresholds have headroom */
}

/* Loads one split of the synthetic task and its example tags. */
static void load_split(struct dataset *d, struct synthetic_set *s, const struct run_cfg *rc,
                       int split, int64_t n, const struct label_map *train_map,
                       tokenizer_t *tok)
{
    struct kd_err err;
    struct dataset_spec spec = {
        .task = rc->kind == SYNTHETIC_PAIR ? DATASET_TASK_SYNTHETIC_PAIR
                                            : DATASET_TASK_SYNTHETIC,
        .split = split, .synthetic_n = n, .synthetic_noise = rc->noise, .seed = rc->seed,
        .max_seq_len = SEQ_LEN};
    if (dataset_load(d, &spec, train_map, tok, &err))
        bail_out("%s", err.msg);
    double noise = split == DATASET_SPLIT_TRAIN ? rc->noise : 0.0;
    if (synthetic_generate(s, rc->kind, split, n, rc->seed, noise, &err))
        bail_out("%s", err.msg);
}

/* Trains every model on one kind; results in res[]. */
static void run_kind(const struct run_cfg *rc, const struct model_size *ms, int n_models,
                     tokenizer_t *tok, struct result *res)
{
    struct dataset train, dev;
    struct synthetic_set train_set, dev_set;
    load_split(&train, &train_set, rc, DATASET_SPLIT_TRAIN, rc->n_train, NULL, tok);
    load_split(&dev, &dev_set, rc, DATASET_SPLIT_DEV, rc->n_dev, &train.map, tok);
    for (int i = 0; i < n_models; i++) {
        train_eval(&ms[i], rc, tokenizer_vocab_size(tok), &train, &dev, &dev_set, &res[i]);
        report(&ms[i], rc, &res[i]);
    }
    synthetic_free(&train_set), synthetic_free(&dev_set);
    dataset_free(&train), dataset_free(&dev);
}

int main(int argc, char **argv)
{
    single_thread(argv);
    log_init(0, 1);
    log_set_level(LOG_LEVEL_ERROR);
    struct run_cfg rc = {.kind = SYNTHETIC_SINGLE, .n_train = CHECK_TRAIN, .n_dev = CHECK_DEV,
                         .epochs = 3.0, .lr = CHECK_LR, .noise = 0.05, .dropout = 0.1,
                         .warmup = 0.1, .beta2 = 0.999, .weight_decay = 0.01, .batch = 32,
                         .seed = CHECK_SEED};
    struct model_size ms[MAX_MODELS];
    int n_models = 0;
    int kinds[2] = {SYNTHETIC_SINGLE, SYNTHETIC_PAIR}, n_kinds = 2;
    int check = argc == 1, check_kind = SYNTHETIC_SINGLE;
    if (argc == 3 && strcmp(argv[1], "--check") == 0) {
        check = 1;
        check_kind = strcmp(argv[2], "pair") == 0     ? SYNTHETIC_PAIR
                     : strcmp(argv[2], "single") == 0 ? SYNTHETIC_SINGLE
                                                      : (usage(argv[2]), 0);
        argc = 1; /* nothing else to parse */
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage(a);
        i++;
        if (strcmp(a, "--kind") == 0) {
            n_kinds = 1;
            kinds[0] = strcmp(v, "pair") == 0     ? SYNTHETIC_PAIR
                       : strcmp(v, "single") == 0 ? SYNTHETIC_SINGLE
                                                  : (usage(v), 0);
        } else if (strcmp(a, "--train") == 0) {
            rc.n_train = atoll(v);
        } else if (strcmp(a, "--dev") == 0) {
            rc.n_dev = atoll(v);
        } else if (strcmp(a, "--epochs") == 0) {
            rc.epochs = atof(v);
        } else if (strcmp(a, "--lr") == 0) {
            rc.lr = atof(v);
        } else if (strcmp(a, "--batch") == 0) {
            rc.batch = atoll(v);
        } else if (strcmp(a, "--seed") == 0) {
            rc.seed = (uint64_t)atoll(v);
        } else if (strcmp(a, "--noise") == 0) {
            rc.noise = atof(v);
        } else if (strcmp(a, "--warmup") == 0) {
            rc.warmup = atof(v);
        } else if (strcmp(a, "--beta2") == 0) {
            rc.beta2 = atof(v);
        } else if (strcmp(a, "--weight-decay") == 0) {
            rc.weight_decay = atof(v);
        } else if (strcmp(a, "--verbose") == 0) {
            rc.verbose = atoi(v);
        } else if (strcmp(a, "--dropout") == 0) {
            rc.dropout = atof(v);
        } else if (strcmp(a, "--model") == 0) {
            if (n_models == MAX_MODELS || parse_size(&ms[n_models++], v))
                usage(v);
        } else {
            usage(a);
        }
        if (rc.n_train < 1 || rc.n_dev < 1 || !(rc.epochs > 0) || !(rc.lr > 0) ||
            rc.batch < 1)
            usage(v);
    }
    if (check) {
        int pair = check_kind == SYNTHETIC_PAIR;
        parse_size(&ms[n_models++], pair ? CHECK_PAIR_TEACHER : CHECK_TEACHER);
        parse_size(&ms[n_models++], pair ? CHECK_PAIR_STUDENT : CHECK_STUDENT);
        kinds[0] = check_kind;
        n_kinds = 1;
    }

    char dir[] = "/tmp/t_synthetic_learn.XXXXXX", vocab[64];
    if (!mkdtemp(dir))
        bail_out("mkdtemp failed");
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
    struct kd_err err;
    tokenizer_t *tok;
    if (synthetic_vocab_write(vocab, &err) || tokenizer_load(&tok, vocab, 1, &err))
        bail_out("%s", err.msg);
    unlink(vocab);
    rmdir(dir);

    for (int k = 0; k < n_kinds; k++) {
        struct result res[MAX_MODELS];
        rc.kind = kinds[k];
        run_kind(&rc, ms, n_models, tok, res);
        if (check) {
            const char *kn = synthetic_kind_name(rc.kind);
            ok(res[0].acc >= CHECK_TEACHER_MIN, "%s: teacher from scratch, %g epochs: dev "
               "accuracy %.1f%% >= %.0f%%", kn, ms[0].epochs, 100.0 * res[0].acc,
               100.0 * CHECK_TEACHER_MIN);
            ok(res[0].acc - res[1].acc >= CHECK_GAP_MIN,
               "%s: student without KD, %g epochs: %.1f%%, %.1f points below the teacher "
               "(>= %.0f)", kn, ms[1].epochs, 100.0 * res[1].acc,
               100.0 * (res[0].acc - res[1].acc), 100.0 * CHECK_GAP_MIN);
            ok(res[1].acc >= CHECK_STUDENT_MIN, "%s: the student still learns: %.1f%% >= "
               "%.0f%%", kn, 100.0 * res[1].acc, 100.0 * CHECK_STUDENT_MIN);
            diag("thresholds from docs/synthetic-task.md; training took %.0f s + %.0f s",
                 res[0].seconds, res[1].seconds);
        }
    }
    tokenizer_free(tok);
    return done_testing();
}
