/* plan.c: the dry-run plan: rank layout with pipeline partition, per-rank
 * memory estimates, stage plan, and the inputs that are missing. */
#include "kd/job/plan.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/io/synthetic.h"
#include "kd/io/teacher_store.h"
#include "kd/model/bert.h"
#include "kd/model/hf_config.h"
/* the store an extract stage writes is decided in one place, which the
 * dry run shares (the only use of the stages layer here) */
#include "kd/stages/teacher_outputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t model_param_count(const struct model_shape *m)
{
    int64_t C = m->hidden, F = m->intermediate;
    int64_t emb = (m->vocab + m->positions + 2) * C + 2 * C;
    int64_t layer = 4 * (C * C + C) + 2 * C + 2 * C * F + F + C + 2 * C;
    int64_t head = C * C + C + m->labels * C + m->labels;
    return emb + m->layers * layer + head;
}

/* Forward FLOPs of one encoder layer for one sequence of T tokens. */
static double layer_flops(const struct model_shape *m, double T)
{
    double C = (double)m->hidden, F = (double)m->intermediate;
    return 2.0 * T * (4.0 * C * C + 2.0 * C * F) + 4.0 * T * T * C;
}

static int64_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int64_t n = 0;
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < got; i++)
            n += buf[i] == '\n';
    fclose(f);
    return n;
}

int job_plan_make(const struct job *job, int world, struct job_plan *plan,
                  struct job_errors *errs)
{
    memset(plan, 0, sizeof *plan);
    plan->world = world;
    const char *vocab = job->data.vocab;
    int64_t vocab_lines = vocab[0] ? count_lines(vocab) : -1;
    plan->teacher = (struct model_shape){job->teacher.layers, job->teacher.hidden,
                                         job->teacher.heads, job->teacher.intermediate,
                                         job->teacher.vocab_size, job->teacher.max_positions,
                                         job->data.num_labels ? job->data.num_labels : 2};
    /* the vocabulary the data will be tokenized with: the synthetic task's
     * own, else the vocab file, else BERT's uncased 30522 */
    if (!plan->teacher.vocab)
        plan->teacher.vocab = job->data.task != DATA_TASK_TSV ? synthetic_vocab_size()
                              : vocab_lines > 0                ? vocab_lines
                                                               : 30522;
    plan->teacher_source = job->teacher.checkpoint[0]
                               ? "job keys teacher.* (the checkpoint is not there yet)"
                               : "job keys teacher.*";
    if (job->teacher.checkpoint[0]) {
        /* the checkpoint's own config.json, when it exists, is the truth */
        char *cj = fs_path_join(job->teacher.checkpoint, "config.json");
        if (fs_file_exists(cj)) {
            struct bert_config bc;
            struct kd_err err;
            if (hf_config_read(cj, &bc, NULL, &err)) {
                job_errors_add(errs, "%s", err.msg);
                free(cj);
                return -1;
            }
            plan->teacher = (struct model_shape){bc.num_hidden_layers, bc.hidden_size,
                                                 bc.num_attention_heads, bc.intermediate_size,
                                                 bc.vocab_size, bc.max_position_embeddings,
                                                 bc.num_labels};
            snprintf(plan->teacher_source_buf, sizeof plan->teacher_source_buf, "%s", cj);
            plan->teacher_source = plan->teacher_source_buf;
        }
        free(cj);
    }
    plan->student = (struct model_shape){job->student.layers, job->student.hidden,
                                         job->student.heads, job->student.intermediate,
                                         plan->teacher.vocab, job->data.max_seq_len,
                                         plan->teacher.labels};
    if (job->data.task == DATA_TASK_TSV) {
        int64_t lines = count_lines(job->data.train);
        plan->n_train = lines > 0 ? lines - 1 : -1; /* header row */
    } else {
        plan->n_train = job->data.synthetic_train;
    }

    char err[512];
    int S = (int)job->teacher.pipeline_stages;
    if (layout_plan(&plan->layout, world, S, err, sizeof err)) {
        job_errors_add(errs, "%s: rank layout: %s", job->path, err);
        return -1;
    }
    int units = (int)plan->teacher.layers + 1; /* unit 0 = embeddings */
    if (S > (int)plan->teacher.layers) {
        job_errors_add(errs, "%s: rank layout: teacher.pipeline_stages = %d is more than the "
                       "teacher's %lld layers", job->path, S, (long long)plan->teacher.layers);
        return -1;
    }
    for (int i = 0; i < job->n_stages; i++) {
        const struct stage_cfg *st = &job->stages[i];
        struct online_layout ol;
        if (st->kind == STAGE_KIND_DISTILL && st->mode == DISTILL_MODE_ONLINE &&
            layout_online(&ol, world, (int)st->teacher_ranks, S, err, sizeof err)) {
            job_errors_add(errs, "%s: rank layout: stage \"%s\" is online with %s", job->path,
                           st->name, err);
            return -1;
        }
    }
    /* Pipeline partition by modelled cost: the embedding lookup is cheap,
     * the classifier head rides with the last layer. */
    double cost[129];
    double T = (double)job->data.max_seq_len;
    cost[0] = 0.05 * layer_flops(&plan->teacher, T);
    for (int l = 1; l < units; l++)
        cost[l] = layer_flops(&plan->teacher, T);
    layout_partition(cost, units, S, plan->teacher_first);
    return 0;
}

static double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

static struct bert_config shape_config(const struct model_shape *m, int64_t layers)
{
    struct bert_config c;
    hf_config_defaults(&c);
    c.vocab_size = m->vocab;
    c.hidden_size = m->hidden;
    c.num_hidden_layers = layers;
    c.num_attention_heads = m->heads;
    c.intermediate_size = m->intermediate;
    c.max_position_embeddings = m->positions;
    c.num_labels = m->labels;
    hf_config_init_layers(&c);
    return c;
}

/* Bytes bert_init would allocate for a whole model of this shape. */
static size_t shape_memory(const struct model_shape *m, int64_t T, int64_t B, int backward,
                           int grads, int optimizer, int heads)
{
    struct bert_config c = shape_config(m, m->layers);
    struct bert_opts o = {.B = B, .T = T, .heads = heads ? BERT_HEAD_CLASSIFIER : 0u,
                          .backward = backward, .param_grads = grads,
                          .optimizer = optimizer};
    return bert_memory_bound(&c, &o).total;
}

/* Bytes of a pipeline stage holding `layers` encoder layers, the embeddings
 * if `first`, the pooler and classifier if `last`. */
static size_t shape_memory_layers(const struct model_shape *m, int layers, int64_t T, int64_t B,
                                  int first, int last, int train)
{
    struct bert_config c = shape_config(m, layers);
    struct bert_opts o = {.B = B, .T = T, .heads = last ? BERT_HEAD_CLASSIFIER : 0u,
                          .backward = train, .param_grads = train, .optimizer = train};
    size_t total = bert_memory_bound(&c, &o).total;
    if (!first) {
        /* the size table always holds embeddings: take them out again */
        size_t emb = (size_t)((m->vocab + m->positions + 2 + 2) * m->hidden) * sizeof(float);
        size_t copies = 1 + (train ? 3 : 0); /* weights (+ grads, m, v) */
        total = total > emb * copies ? total - emb * copies : total;
    }
    return total;
}

/* The teacher-store spec an extract stage will write, from the job alone
 * (attention planned at full length: the real lengths are not read yet). */
/* The store spec extract stage `index` will write, from the same code the
 * stage uses (stages/teacher_outputs.h: its own keys united with what the
 * later distill stages' losses need; it logs each addition), for a teacher
 * of the planned shape. Without the data every example is planned at full
 * length, so ragged attention maps come out as an upper bound. *lengths
 * (to free) backs sp->lengths. */
static int plan_store_spec(const struct job *job, const struct job_plan *plan, int index,
                           struct store_spec *sp, int32_t **lengths, struct kd_err *err)
{
    const struct model_shape *t = &plan->teacher;
    struct bert_config cfg;
    hf_config_defaults(&cfg);
    cfg.num_hidden_layers = t->layers;
    cfg.hidden_size = t->hidden;
    cfg.num_attention_heads = t->heads;
    cfg.intermediate_size = t->intermediate;
    cfg.vocab_size = t->vocab;
    cfg.max_position_embeddings = t->positions;
    cfg.num_labels = t->labels;
    hf_config_init_layers(&cfg);
    struct dataset d = {.n = plan->n_train > 0 ? plan->n_train : 1,
                        .max_seq_len = job->data.max_seq_len};
    *lengths = malloc((size_t)d.n * sizeof **lengths);
    if (!*lengths)
        return kd_errf(err, "out of memory planning the store");
    for (int64_t i = 0; i < d.n; i++)
        (*lengths)[i] = (int32_t)d.max_seq_len;
    d.lengths = *lengths;
    return teacher_outputs_spec(job, index, &cfg, &d, sp, err);
}

/* The specs of every extract stage (specs[i] valid where ok[i]). */
struct store_plans {
    struct store_spec *specs;
    int32_t **lengths;
    int *ok;
};

static void store_plans_make(struct store_plans *sp, const struct job *job,
                             const struct job_plan *plan)
{
    const size_t n = (size_t)job->n_stages;
    sp->specs = calloc(n, sizeof *sp->specs);
    sp->lengths = calloc(n, sizeof *sp->lengths);
    sp->ok = calloc(n, sizeof *sp->ok);
    KD_ASSERT(sp->specs && sp->lengths && sp->ok, "out of memory planning the store");
    for (int i = 0; i < job->n_stages; i++) {
        if (job->stages[i].kind != STAGE_KIND_EXTRACT)
            continue;
        struct kd_err err;
        if (plan_store_spec(job, plan, i, &sp->specs[i], &sp->lengths[i], &err))
            log_warn0("teacher store of \"%s\": cannot plan it: %s", job->stages[i].name,
                      err.msg);
        else
            sp->ok[i] = 1;
    }
}

static void store_plans_free(struct store_plans *sp, const struct job *job)
{
    for (int i = 0; i < job->n_stages; i++)
        free(sp->lengths[i]);
    free(sp->specs), free(sp->lengths), free(sp->ok);
}

/* Prints the store size per component of every extract stage and warns
 * when it exceeds job.store_budget_gb. */
static void print_store_plans(const struct job *job, const struct job_plan *plan,
                              const struct store_plans *plans)
{
    for (int i = 0; i < job->n_stages; i++) {
        const struct stage_cfg *st = &job->stages[i];
        if (st->kind != STAGE_KIND_EXTRACT)
            continue;
        if (plan->n_train < 1) {
            log_info0("  teacher store of \"%s\": size unknown until data.train is there",
                      st->name);
            continue;
        }
        if (!plans->ok[i])
            continue;
        struct store_size sz;
        struct kd_err err;
        if (store_plan_size(&plans->specs[i], &sz, &err)) {
            log_warn0("teacher store of \"%s\": cannot plan its size: %s", st->name, err.msg);
            continue;
        }
        log_info0("  teacher store of \"%s\" (%lld examples; attention at full length, an "
                  "upper bound):", st->name, (long long)plan->n_train);
        for (int d = 0; d < STORE_DS_COUNT; d++)
            if (sz.bytes[d])
                log_info0("    %-26s %10.3f GB", store_ds_path((enum store_ds)d),
                          (double)sz.bytes[d] / 1e9);
        log_info0("    %-26s %10.3f GB", "total (with metadata)", (double)sz.total / 1e9);
        if ((double)sz.total / 1e9 > job->job.store_budget_gb)
            log_warn0("teacher store of \"%s\" is planned at %.1f GB, over "
                      "job.store_budget_gb = %g GB (consider precision = \"fp16\", fewer "
                      "hidden_layers/attention_layers, or tokens = \"cls\")",
                      st->name, (double)sz.total / 1e9, job->job.store_budget_gb);
    }
}

/* "rank 3" or "ranks 0-1" */
static const char *rank_range(char *buf, size_t n, int a, int b)
{
    if (a == b)
        snprintf(buf, n, "rank %d", a);
    else
        snprintf(buf, n, "ranks %d-%d", a, b);
    return buf;
}

/* An online distill stage's roles and its stream buffers (stages/online.h):
 * an upper bound, as if every hidden loss mapped every student layer and
 * the embeddings. */
static void print_online(const struct job *job, const struct job_plan *plan,
                         const struct stage_cfg *st)
{
    struct online_layout ol;
    char e[400], ra[32], rb[32];
    if (layout_online(&ol, plan->world, (int)st->teacher_ranks,
                      (int)job->teacher.pipeline_stages, e, sizeof e))
        return; /* job_plan_make reported it */
    const struct model_shape *t = &plan->teacher, *s = &plan->student;
    const double T = (double)job->data.max_seq_len;
    const double B = (double)((st->batch + ol.students - 1) / ol.students + st->accumulate - 1) /
                     (double)st->accumulate;
    int hidden = 0, hidden_all = 0, attention = 0, soft = 0;
    for (int k = 0; k < st->n_losses; k++) {
        const struct loss_cfg *lc = &st->losses[k];
        hidden |= lc->kind == LOSS_KIND_HIDDEN;
        hidden_all |= lc->kind == LOSS_KIND_HIDDEN && lc->tokens == TOKEN_SEL_ALL;
        attention |= lc->kind == LOSS_KIND_ATTENTION;
        soft |= lc->kind == LOSS_KIND_SOFT;
    }
    double floats = 4.0 + (soft ? B * (double)t->labels : 0.0);
    if (hidden)
        floats += (double)(s->layers + 1) * B * (hidden_all ? T : 1.0) * (double)t->hidden;
    if (attention)
        floats += (double)s->layers * B * (double)t->heads * T * T;
    const double msg_mb = 4.0 * floats / 1e6;
    const int per_replica = (ol.students + ol.R - 1) / ol.R;
    log_info0("     stage \"%s\" (online): %s train the student, %s run %d teacher "
              "pipeline%s of %d stage%s (student rank d is fed by pipeline d %% %d); stream "
              "buffers at most %.1f MB per student rank, %.1f MB per last teacher stage",
              st->name, rank_range(ra, sizeof ra, 0, ol.students - 1),
              rank_range(rb, sizeof rb, ol.students, ol.world - 1), ol.R, ol.R == 1 ? "" : "s",
              ol.S, ol.S == 1 ? "" : "s", ol.R,
              LAYOUT_ONLINE_DEPTH * (double)st->accumulate * msg_mb,
              2.0 * (double)per_replica * (double)st->accumulate * msg_mb);
}

/* The pipeline's message buffers on stage p (parallel/pipeline.c):
 * PIPELINE_SLOTS (2) (B,T,C) states per direction used (activations;
 * gradients too when a finetune stage trains through the pipeline), and
 * the taps an extract stage gathers on the last stage: stage q < S - 1
 * sends the hidden states (B,T,C) and attention maps (B,NH,T,T) it
 * computes, the last stage receives them from every other stage. */
static double pipeline_message_bytes(const struct job *job, const struct job_plan *plan,
                                     const struct store_plans *plans, int p, int finetune)
{
    const int S = plan->layout.pipeline_stages;
    const double B = (double)job->teacher.micro_batch, T = (double)job->data.max_seq_len;
    const double C = (double)plan->teacher.hidden, NH = (double)plan->teacher.heads;
    const double state = B * T * C;
    int dirs = (p > 0) + (p < S - 1);
    if (finetune)
        dirs *= 2;
    double floats = 2.0 * dirs * state;
    double taps[129] = {0}; /* per stage: the taps it computes */
    for (int i = 0; i < job->n_stages; i++) {
        const struct stage_cfg *st = &job->stages[i];
        if (st->kind != STAGE_KIND_EXTRACT || S == 1 || !plans->ok[i])
            continue;
        const struct store_spec *sp = &plans->specs[i];
        double mine[129] = {0};
        for (int q = 0; q < S; q++) {
            const int a = plan->teacher_first[q], b = plan->teacher_first[q + 1];
            for (int k = 0; k < sp->n_hidden_layers; k++)
                if (sp->hidden_layers[k] >= a && sp->hidden_layers[k] < b)
                    mine[q] += state;
            for (int k = 0; k < sp->n_attention_layers; k++)
                if (sp->attention_layers[k] >= a && sp->attention_layers[k] < b)
                    mine[q] += B * NH * T * T;
        }
        for (int q = 0; q < S; q++)
            if (mine[q] > taps[q])
                taps[q] = mine[q];
    }
    if (p < S - 1) {
        floats += 2.0 * taps[p];
    } else {
        for (int q = 0; q < S - 1; q++)
            floats += 2.0 * taps[q];
    }
    return 4.0 * floats;
}

void job_plan_print(const struct job *job, const struct job_plan *plan)
{
    const struct rank_layout *l = &plan->layout;
    const struct model_shape *t = &plan->teacher, *s = &plan->student;
    int S = l->pipeline_stages;
    struct store_plans plans;
    store_plans_make(&plans, job, plan);
    log_info0("plan for %d rank%s:", plan->world, plan->world == 1 ? "" : "s");
    log_info0("  teacher: %lld layers, hidden %lld, %lld heads, FFN %lld, vocab %lld "
              "(%.1fM parameters; shape from %s)", (long long)t->layers, (long long)t->hidden,
              (long long)t->heads, (long long)t->intermediate, (long long)t->vocab,
              (double)model_param_count(t) / 1e6, plan->teacher_source);
    log_info0("  student: %lld layers, hidden %lld, %lld heads, FFN %lld (%.1fM parameters), "
              "init %s", (long long)s->layers, (long long)s->hidden, (long long)s->heads,
              (long long)s->intermediate, (double)model_param_count(s) / 1e6,
              job->student.init == STUDENT_INIT_PCA ? "pca"
              : job->student.init == STUDENT_INIT_TEACHER_LAYERS ? "teacher_layers" : "random");
    log_info0("  teacher stages: %d pipeline stage%s x %d replica%s; student stages: %d "
              "data-parallel rank%s", S, S == 1 ? "" : "s", l->replicas,
              l->replicas == 1 ? "" : "s", plan->world, plan->world == 1 ? "" : "s");
    for (int p = 0; p < S; p++) {
        int a = plan->teacher_first[p], b = plan->teacher_first[p + 1] - 1;
        log_info0("    pipeline stage %d: %s%slayers %d-%d%s", p, a == 0 ? "embeddings + " : "",
                  a == 0 && b == 0 ? "no" : "", a == 0 ? 1 : a, b,
                  p == S - 1 ? " + pooler/heads" : "");
    }
    /* memory from the engine's own size table (bert_memory_bound), the
     * numbers the allocation will use */
    int finetune = 0;
    int64_t student_batch = 32;
    for (int i = 0; i < job->n_stages; i++) {
        finetune |= job->stages[i].kind == STAGE_KIND_FINETUNE;
        if (job->stages[i].kind == STAGE_KIND_DISTILL)
            student_batch = job->stages[i].batch;
    }
    int64_t s_local = (student_batch + plan->world - 1) / plan->world;
    double s_bytes = (double)shape_memory(s, job->data.max_seq_len, s_local, 1, 1, 1, 1);
    double stage_bytes[129];
    for (int p = 0; p < S; p++) {
        int a = plan->teacher_first[p], b = plan->teacher_first[p + 1] - 1;
        int nl = b - (a == 0 ? 0 : a - 1);
        /* a fine-tuned stage keeps up to S micro-batches in flight (1F1B) */
        int64_t mb = job->teacher.micro_batch * (finetune ? S : 1);
        stage_bytes[p] = (double)shape_memory_layers(t, nl, job->data.max_seq_len, mb,
                                                     a == 0, p == S - 1, finetune) +
                         pipeline_message_bytes(job, plan, &plans, p, finetune);
    }
    log_info0("  memory bound per rank (engine size tables: weights, gradients, Adam state, "
              "activations; plus the pipeline's message buffers)");
    log_info0("  rank | teacher replica.stage | teacher layers | teacher GiB | student GiB");
    for (int r = 0; r < plan->world; r++) {
        int rep, st;
        layout_teacher_role(l, r, &rep, &st);
        int a = plan->teacher_first[st], b = plan->teacher_first[st + 1] - 1;
        log_info0("  %4d | %9d.%-10d | %5d-%-8d | %11.2f | %11.2f", r, rep, st, a == 0 ? 1 : a,
                  b, gib(stage_bytes[st]), gib(s_bytes));
    }
    log_info0("stage plan (%d stage%s):", job->n_stages, job->n_stages == 1 ? "" : "s");
    for (int i = 0; i < job->n_stages; i++) {
        const struct stage_cfg *st = &job->stages[i];
        switch (st->kind) {
        case STAGE_KIND_FINETUNE:
            log_info0("  %d. %s (finetune): train the teacher on data.train, %g epochs, batch "
                      "%lld, lr %g; pipeline %d x %d", i + 1, st->name, st->epochs,
                      (long long)st->batch, st->lr, S, l->replicas);
            break;
        case STAGE_KIND_PRUNE:
            log_info0("  %d. %s (prune): sparse teacher", i + 1, st->name);
            break;
        case STAGE_KIND_EXTRACT:
            log_info0("  %d. %s (extract): teacher inference over data.train -> %s/teacher.h5 "
                      "(%d output kind%s, %s); %d replicas in parallel", i + 1, st->name,
                      job->job.output_dir, st->outputs.n, st->outputs.n == 1 ? "" : "s",
                      st->precision == PRECISION_FP32 ? "fp32" : st->precision ==
                      PRECISION_FP16 ? "fp16" : "bf16", l->replicas);
            break;
        case STAGE_KIND_DISTILL: {
            char terms[256] = "";
            size_t used = 0;
            for (int k = 0; k < st->n_losses; k++)
                used += (size_t)snprintf(terms + used, sizeof terms - used, "%s%s x%g",
                                         k ? " + " : "", loss_kind_name(st->losses[k].kind),
                                         st->losses[k].weight);
            log_info0("  %d. %s (distill, %s, method %s): %s; %g epochs, batch %lld, lr %g; "
                      "%d data-parallel ranks", i + 1, st->name,
                      st->mode == DISTILL_MODE_ONLINE ? "online" : "offline",
                      st->method == DISTILL_METHOD_PID ? "pid"
                      : st->method == DISTILL_METHOD_SID ? "sid" : "all", terms, st->epochs,
                      (long long)st->batch, st->lr,
                      st->mode == DISTILL_MODE_ONLINE ? plan->world - (int)st->teacher_ranks
                                                      : plan->world);
            if (st->mode == DISTILL_MODE_ONLINE)
                print_online(job, plan, st);
            break;
        }
        case STAGE_KIND_EVALUATE:
            log_info0("  %d. %s (evaluate): teacher and student on the %s split -> report.md, "
                      "report.csv, plots", i + 1, st->name,
                      st->split == EVAL_SPLIT_DEV ? "dev" : "test");
            break;
        case STAGE_KIND_EXPORT:
            log_info0("  %d. %s (export): student as a Hugging Face directory -> %s", i + 1,
                      st->name, st->dir[0] ? st->dir : "<output_dir>/student");
            break;
        }
    }
    if (plan->n_train >= 0)
        log_info0("training examples: %lld", (long long)plan->n_train);
    print_store_plans(job, plan, &plans);
    store_plans_free(&plans, job);
}

static int missing(const char *what, const char *path, const char *hint)
{
    if (!path[0] || fs_file_exists(path))
        return 0;
    log_warn0("missing input: %s %s%s%s", what, path, hint ? " " : "", hint ? hint : "");
    return 1;
}

int job_plan_missing_inputs(const struct job *job)
{
    int n = 0;
    if (job->data.task == DATA_TASK_TSV) {
        n += missing("data.train", job->data.train, NULL);
        n += missing("data.dev", job->data.dev, NULL);
        n += missing("data.test", job->data.test, NULL);
    }
    n += missing("data.vocab", job->data.vocab, NULL);
    if (job->teacher.checkpoint[0]) {
        char p[4096];
        snprintf(p, sizeof p, "%s/config.json", job->teacher.checkpoint);
        n += missing("teacher.checkpoint", p,
                     "(a Hugging Face BERT directory: config.json, model.safetensors, vocab.txt)");
    }
    if (job->student.checkpoint[0]) {
        char p[4096];
        snprintf(p, sizeof p, "%s/config.json", job->student.checkpoint);
        n += missing("student.checkpoint", p, NULL);
    }
    /* an offline distill stage that uses the teacher reads
     * <output_dir>/teacher.h5: written by an extract stage before it, or
     * there already (e.g. linked from another job's output) */
    int extract_before = 0;
    for (int i = 0; i < job->n_stages; i++) {
        const struct stage_cfg *st = &job->stages[i];
        extract_before |= st->kind == STAGE_KIND_EXTRACT;
        int teacher_terms = 0;
        for (int k = 0; k < st->n_losses; k++)
            teacher_terms |= st->losses[k].kind != LOSS_KIND_HARD;
        if (st->kind != STAGE_KIND_DISTILL || st->mode == DISTILL_MODE_ONLINE ||
            !teacher_terms || extract_before)
            continue;
        char *store = fs_path_join(job->job.output_dir, "teacher.h5");
        char hint[300];
        snprintf(hint, sizeof hint, "(stage \"%s\" reads it and no extract stage comes "
                 "before it in this job)", st->name);
        n += missing("teacher store", store, hint);
        free(store);
        break;
    }
    return n;
}
