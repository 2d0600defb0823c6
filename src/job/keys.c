/* keys.c: the job-file key table. Adding a key means one line here and a
 * field in struct job / stage_cfg / loss_cfg (job.h); parsing, --set,
 * validation, the echo and docs/job-config.md follow from this table. */
#include "kd/job/keys.h"
#include "kd/job/job.h"
#include "kd/core/text.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#define J(f) KEY_SCOPE_JOB, offsetof(struct job, f)
#define S(f) KEY_SCOPE_STAGE, offsetof(struct stage_cfg, f)
#define L(f) KEY_SCOPE_LOSS, offsetof(struct loss_cfg, f)
#define SEC KEY_SCOPE_JOB, 0
#define NONE 1, 0 /* min > max: no range */
#define BIT(k) (1u << (k))
#define TRAIN (BIT(STAGE_KIND_FINETUNE) | BIT(STAGE_KIND_DISTILL))
#define FT BIT(STAGE_KIND_FINETUNE)
#define DI BIT(STAGE_KIND_DISTILL)
#define EX BIT(STAGE_KIND_EXTRACT)

const struct key_def key_table[] = {
    /* ---- job ---------------------------------------------------------- */
    {"job", KEY_SECTION, SEC, NULL, NONE, NULL, 0, "Run-wide settings."},
    {"job.name", KEY_STRING, J(job.name), NULL, NONE, NULL, 0,
     "Name of the job; used in messages and as the default output directory."},
    {"job.output_dir", KEY_STRING, J(job.output_dir), "\"\"", NONE, NULL, 0,
     "Directory for every file the job writes; \"\" means runs/<name>."},
    {"job.seed", KEY_INT, J(job.seed), "1234", 0, 4294967295.0, NULL, 0,
     "Seed of all random streams (data order, initialisation, dropout)."},
    {"job.ranks", KEY_INT, J(job.ranks), "0", 0, 1048576, NULL, 0,
     "Rank count the job is planned for; 0 accepts any. --dry-run plans for it."},
    {"job.log_level", KEY_ENUM, J(job.log_level), "\"info\"", NONE, "error|warn|info|debug", 0,
     "Least severe message printed."},
    {"job.checkpoint_every", KEY_INT, J(job.checkpoint_every), "500", 0, 1e12, NULL, 0,
     "Training steps between checkpoints (0: only at the end of a stage)."},
    {"job.store_budget_gb", KEY_FLOAT, J(job.store_budget_gb), "100.0", 0, 1e9, NULL, 0,
     "Warn when the planned teacher store exceeds this many GB."},

    /* ---- data --------------------------------------------------------- */
    {"data", KEY_SECTION, SEC, NULL, NONE, NULL, 0, "Training and evaluation data."},
    {"data.task", KEY_ENUM, J(data.task), "\"tsv\"", NONE, "tsv|synthetic|synthetic_pair", 0,
     "tsv: GLUE-style files; synthetic(_pair): the embedded generated task."},
    {"data.train", KEY_STRING, J(data.train), "\"\"", NONE, NULL, 0,
     "Training TSV (required for task \"tsv\")."},
    {"data.dev", KEY_STRING, J(data.dev), "\"\"", NONE, NULL, 0,
     "Development TSV used by evaluation (required for task \"tsv\")."},
    {"data.test", KEY_STRING, J(data.test), "\"\"", NONE, NULL, 0, "Optional test TSV."},
    {"data.text_a", KEY_STRING, J(data.text_a), "\"sentence\"", NONE, NULL, 0,
     "Header name of the first text column."},
    {"data.text_b", KEY_STRING, J(data.text_b), "\"\"", NONE, NULL, 0,
     "Header name of the second text column of a pair task (\"\": single sentences)."},
    {"data.label", KEY_STRING, J(data.label), "\"label\"", NONE, NULL, 0,
     "Header name of the label column."},
    {"data.problem", KEY_ENUM, J(data.problem), "\"classification\"", NONE,
     "classification|regression", 0, "Classification (cross-entropy) or regression (MSE)."},
    {"data.num_labels", KEY_INT, J(data.num_labels), "0", 0, 100000, NULL, 0,
     "Number of classes; 0 takes it from the training data."},
    {"data.max_seq_len", KEY_INT, J(data.max_seq_len), "128", 8, 4096, NULL, 0,
     "Tokens per example after [CLS]/[SEP], truncation and padding."},
    {"data.vocab", KEY_STRING, J(data.vocab), "\"\"", NONE, NULL, 0,
     "WordPiece vocab.txt; \"\" uses the teacher checkpoint's."},
    {"data.lowercase", KEY_BOOL, J(data.lowercase), "true", NONE, NULL, 0,
     "Lower-case and strip accents (uncased vocabularies)."},
    {"data.bad_rows", KEY_ENUM, J(data.bad_rows), "\"error\"", NONE, "error|skip", 0,
     "A malformed TSV row stops the job (error) or is counted and skipped (skip)."},
    {"data.synthetic_train", KEY_INT, J(data.synthetic_train), "4000", 16, 1e9, NULL, 0,
     "Training examples of the synthetic task."},
    {"data.synthetic_dev", KEY_INT, J(data.synthetic_dev), "1000", 16, 1e9, NULL, 0,
     "Development examples of the synthetic task."},
    {"data.synthetic_noise", KEY_FLOAT, J(data.synthetic_noise), "0.05", 0, 0.5, NULL, 0,
     "Fraction of synthetic labels flipped at random."},

    /* ---- teacher ------------------------------------------------------ */
    {"teacher", KEY_SECTION, SEC, NULL, NONE, NULL, 0, "The teacher model and its layout."},
    {"teacher.checkpoint", KEY_STRING, J(teacher.checkpoint), "\"\"", NONE, NULL, 0,
     "Hugging Face BERT directory (config.json, model.safetensors, vocab.txt); "
     "\"\" builds a teacher from the sizes below (trained by a finetune stage)."},
    {"teacher.layers", KEY_INT, J(teacher.layers), "4", 1, 128, NULL, 0,
     "Encoder layers of a teacher built from scratch (or the planning size when "
     "the checkpoint is not there yet)."},
    {"teacher.hidden", KEY_INT, J(teacher.hidden), "256", 8, 65536, NULL, 0,
     "Hidden size of a teacher built from scratch."},
    {"teacher.heads", KEY_INT, J(teacher.heads), "4", 1, 1024, NULL, 0,
     "Attention heads of a teacher built from scratch."},
    {"teacher.intermediate", KEY_INT, J(teacher.intermediate), "1024", 1, 1048576, NULL, 0,
     "FFN width of a teacher built from scratch."},
    {"teacher.vocab_size", KEY_INT, J(teacher.vocab_size), "0", 0, 10000000, NULL, 0,
     "Vocabulary size of a teacher built from scratch; 0 takes the vocabulary's."},
    {"teacher.max_positions", KEY_INT, J(teacher.max_positions), "512", 8, 65536, NULL, 0,
     "Position embeddings of a teacher built from scratch."},
    {"teacher.pipeline_stages", KEY_INT, J(teacher.pipeline_stages), "1", 1, 4096, NULL, 0,
     "Pipeline stages S the teacher's layers are split over; ranks/S replicas."},
    {"teacher.micro_batch", KEY_INT, J(teacher.micro_batch), "8", 1, 65536, NULL, 0,
     "Examples per pipeline micro-batch."},

    /* ---- student ------------------------------------------------------ */
    {"student", KEY_SECTION, SEC, NULL, NONE, NULL, 0, "The student model."},
    {"student.layers", KEY_INT, J(student.layers), "4", 1, 128, NULL, 0, "Encoder layers."},
    {"student.hidden", KEY_INT, J(student.hidden), "312", 8, 65536, NULL, 0, "Hidden size."},
    {"student.heads", KEY_INT, J(student.heads), "12", 1, 1024, NULL, 0,
     "Attention heads (must divide hidden)."},
    {"student.intermediate", KEY_INT, J(student.intermediate), "1200", 1, 1048576, NULL, 0,
     "FFN width."},
    {"student.init", KEY_ENUM, J(student.init), "\"random\"", NONE,
     "random|teacher_layers|pca", 0,
     "Initialisation: random, a subset of teacher layers (same widths), or "
     "PCA-reduced teacher weights (ScaLAPACK)."},
    {"student.init_layers", KEY_INT_LIST, J(student.init_layers), "[]", 1, 128, NULL, 0,
     "Teacher layers (1-based) copied for init = \"teacher_layers\"; [] = evenly spaced."},
    {"student.checkpoint", KEY_STRING, J(student.checkpoint), "\"\"", NONE, NULL, 0,
     "Start from this Hugging Face directory instead (overrides init)."},
    {"student.init_projections", KEY_ENUM, J(student.init_projections), "\"random\"", NONE,
     "random|lstsq", 0,
     "Initial projections of hidden losses between different widths: random, or a "
     "least-squares fit (ScaLAPACK) of the teacher's hidden states from the initial "
     "student's on a sample of training examples."},

    /* ---- stages ------------------------------------------------------- */
    {"stages", KEY_SECTION, SEC, NULL, NONE, NULL, 0,
     "The stages, run in order: a list of groups ( { ... }, { ... } )."},
    {"stages.[].name", KEY_STRING, S(name), NULL, NONE, NULL, 0,
     "Unique stage name (used by --stage and the manifest)."},
    {"stages.[].kind", KEY_ENUM, S(kind), NULL, NONE,
     "finetune|prune|extract|distill|evaluate|export", 0, "What the stage does."},
    {"stages.[].epochs", KEY_FLOAT, S(epochs), "3.0", 0, 1e6, NULL, TRAIN,
     "Passes over the training data."},
    {"stages.[].max_steps", KEY_INT, S(max_steps), "0", 0, 1e12, NULL, TRAIN,
     "Stop after this many optimizer steps (0: epochs decide)."},
    {"stages.[].batch", KEY_INT, S(batch), "32", 1, 1e7, NULL,
     TRAIN | EX | BIT(STAGE_KIND_EVALUATE) | BIT(STAGE_KIND_PRUNE),
     "Global batch (examples per optimizer step, summed over ranks)."},
    {"stages.[].accumulate", KEY_INT, S(accumulate), "1", 1, 65536, NULL, TRAIN,
     "Micro-steps whose gradients are accumulated per optimizer step."},
    {"stages.[].lr", KEY_FLOAT, S(lr), "5e-5", 0, 10, NULL, TRAIN, "Peak learning rate."},
    {"stages.[].warmup", KEY_FLOAT, S(warmup), "0.1", 0, 1, NULL, TRAIN,
     "Fraction of steps with linear warm-up."},
    {"stages.[].decay", KEY_ENUM, S(decay), "\"linear\"", NONE, "linear|cosine|constant", TRAIN,
     "Learning-rate decay after warm-up."},
    {"stages.[].optimizer", KEY_ENUM, S(optimizer), "\"adamw\"", NONE, "adamw|adam", TRAIN,
     "AdamW (decoupled weight decay) or Adam (L2 added to the gradient)."},
    {"stages.[].beta1", KEY_FLOAT, S(beta1), "0.9", 0, 0.999999, NULL, TRAIN, "Adam beta1."},
    {"stages.[].beta2", KEY_FLOAT, S(beta2), "0.999", 0, 0.999999, NULL, TRAIN, "Adam beta2."},
    {"stages.[].eps", KEY_FLOAT, S(eps), "1e-8", 0, 1, NULL, TRAIN, "Adam epsilon."},
    {"stages.[].weight_decay", KEY_FLOAT, S(weight_decay), "0.01", 0, 10, NULL, TRAIN,
     "Weight decay (never on biases or LayerNorm)."},
    {"stages.[].grad_clip", KEY_FLOAT, S(grad_clip), "1.0", 0, 1e6, NULL, TRAIN,
     "Global gradient-norm clip (0: off)."},
    {"stages.[].dropout", KEY_FLOAT, S(dropout), "-1", -1, 0.9, NULL, TRAIN,
     "Dropout probability (-1: the model's config)."},
    {"stages.[].eval_every", KEY_INT, S(eval_every), "0", 0, 1e12, NULL, TRAIN,
     "Steps between dev evaluations (0: once per epoch)."},
    {"stages.[].method", KEY_ENUM, S(method), "\"all\"", NONE, "all|pid|sid", DI,
     "Internal distillation schedule: all layers at once, progressive (PID) or stacked (SID)."},
    {"stages.[].mode", KEY_ENUM, S(mode), "\"offline\"", NONE, "offline|online", DI,
     "offline: read the teacher store; online: teacher ranks stream to student ranks."},
    {"stages.[].teacher_ranks", KEY_INT, S(teacher_ranks), "0", 0, 1048576, NULL, DI,
     "Online mode: ranks running teacher pipelines (the rest train the student)."},
    {"stages.[].switch_threshold", KEY_FLOAT, S(switch_threshold), "0", 0, 1e9, NULL, DI,
     "PID/SID: move to the next layer when its loss falls below this (0: equal split of steps)."},
    {"stages.[].losses", KEY_SECTION, SEC, NULL, NONE, NULL, DI,
     "Loss terms of a distill stage: a list of groups."},
    {"stages.[].outputs", KEY_ENUM_LIST, S(outputs), "[\"logits\"]", NONE,
     "logits|hidden|attention", EX, "Teacher outputs written to the store."},
    {"stages.[].hidden_layers", KEY_INT_LIST, S(hidden_layers), "[]", 0, 128, NULL, EX,
     "Hidden-state layers stored (0 = embedding output); [] = all."},
    {"stages.[].attention_layers", KEY_INT_LIST, S(attention_layers), "[]", 1, 128, NULL, EX,
     "Attention-map layers stored (1-based); [] = all."},
    {"stages.[].tokens", KEY_ENUM, S(tokens), "\"all\"", NONE, "all|cls", EX,
     "Store hidden states of all tokens or of [CLS] only."},
    {"stages.[].precision", KEY_ENUM, S(precision), "\"fp32\"", NONE, "fp32|fp16|bf16", EX,
     "Storage precision of float tensors in the store."},
    {"stages.[].compress", KEY_BOOL, S(compress), "false", NONE, NULL, EX,
     "Shuffle + deflate filters (slow to write; smaller files)."},
    {"stages.[].split", KEY_ENUM, S(split), "\"dev\"", NONE, "dev|test",
     BIT(STAGE_KIND_EVALUATE), "Data split evaluated."},
    {"stages.[].dir", KEY_STRING, S(dir), "\"\"", NONE, NULL, BIT(STAGE_KIND_EXPORT),
     "Export directory (\"\": <output_dir>/student)."},

    /* ---- loss terms of a distill stage -------------------------------- */
    {"stages.[].losses.[].kind", KEY_ENUM, L(kind), NULL, NONE, "hard|soft|hidden|attention", 0,
     "hard: gold labels; soft: teacher logits (see form); hidden: hidden states; "
     "attention: attention maps."},
    {"stages.[].losses.[].weight", KEY_FLOAT, L(weight), "1.0", 0, 1e6, NULL, 0,
     "Weight of the term in the total loss."},
    {"stages.[].losses.[].temperature", KEY_FLOAT, L(temperature), "1.0", 1e-3, 1e3, NULL,
     BIT(LOSS_KIND_SOFT), "Softmax temperature T (the loss is scaled by T^2)."},
    {"stages.[].losses.[].temperature_end", KEY_FLOAT, L(temperature_end), "1.0", 1e-3, 1e3,
     NULL, BIT(LOSS_KIND_SOFT), "Final temperature of a linear schedule."},
    {"stages.[].losses.[].temperature_schedule", KEY_ENUM, L(temperature_schedule),
     "\"constant\"", NONE, "constant|linear", BIT(LOSS_KIND_SOFT),
     "Temperature constant or annealed linearly to temperature_end."},
    {"stages.[].losses.[].form", KEY_ENUM, L(form), "\"kl\"", NONE, "kl|ce",
     BIT(LOSS_KIND_SOFT),
     "kl: T^2 KL divergence of the student's softened distribution from the teacher's "
     "(0 when they agree); ce: T^2 soft cross-entropy (Aguilar et al.'s L_soft). Same "
     "gradient; ce is larger by T^2 times the teacher's entropy."},
    {"stages.[].losses.[].metric", KEY_ENUM, L(metric), "\"mse\"", NONE, "mse|cosine",
     BIT(LOSS_KIND_HIDDEN), "Distance between hidden states."},
    {"stages.[].losses.[].map", KEY_ENUM, L(map), "\"uniform\"", NONE, "uniform|last|explicit",
     BIT(LOSS_KIND_HIDDEN) | BIT(LOSS_KIND_ATTENTION),
     "Layer map: uniform (student j <-> teacher j*Lt/Ls), last, or explicit lists."},
    {"stages.[].losses.[].student_layers", KEY_INT_LIST, L(student_layers), "[]", 0, 128, NULL,
     BIT(LOSS_KIND_HIDDEN) | BIT(LOSS_KIND_ATTENTION), "Explicit map: student layers."},
    {"stages.[].losses.[].teacher_layers", KEY_INT_LIST, L(teacher_layers), "[]", 0, 128, NULL,
     BIT(LOSS_KIND_HIDDEN) | BIT(LOSS_KIND_ATTENTION),
     "Explicit map: the teacher layer for each student layer."},
    {"stages.[].losses.[].tokens", KEY_ENUM, L(tokens), "\"all\"", NONE, "all|cls",
     BIT(LOSS_KIND_HIDDEN), "Compare all tokens or [CLS] only."},
    {"stages.[].losses.[].rows", KEY_ENUM, L(rows), "\"real\"", NONE, "real|all",
     BIT(LOSS_KIND_ATTENTION),
     "Query rows the attention KL averages over: the real tokens' rows, or all T rows, "
     "padding included (GLMKD)."},
};

const size_t key_table_len = sizeof key_table / sizeof key_table[0];

const struct key_def *key_lookup(const char *generic_path)
{
    for (size_t i = 0; i < key_table_len; i++)
        if (strcmp(key_table[i].path, generic_path) == 0)
            return &key_table[i];
    return NULL;
}

int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    int row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int sub = diag + (a[i - 1] != b[j - 1]);
            int best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

/* Splits "a.b.c" into section "a.b" and leaf "c". */
static void split_path(const char *path, char *section, size_t n, const char **leaf)
{
    const char *dot = strrchr(path, '.');
    size_t len = dot ? (size_t)(dot - path) : 0;
    if (n == 0)
        return;
    if (len >= n)
        len = n - 1;
    memcpy(section, path, len);
    section[len] = '\0';
    *leaf = dot ? dot + 1 : path;
}

const struct key_def *key_suggest(const char *generic_path)
{
    char sec[256], ksec[256];
    const char *leaf, *kleaf;
    split_path(generic_path, sec, sizeof sec, &leaf);
    const struct key_def *best = NULL;
    int best_d = 1 << 30;
    for (size_t i = 0; i < key_table_len; i++) {
        split_path(key_table[i].path, ksec, sizeof ksec, &kleaf);
        if (strcmp(sec, ksec) != 0)
            continue;
        int d = edit_distance(leaf, kleaf);
        /* a prefix or substring match ("lr_max" -> "lr") also counts */
        if (strstr(leaf, kleaf) || strstr(kleaf, leaf))
            d = d < 2 ? d : 2;
        if (d < best_d) {
            best_d = d;
            best = &key_table[i];
        }
    }
    int limit = (int)strlen(leaf) / 3 + 1;
    return best && best_d <= (limit > 3 ? 3 : limit) ? best : NULL;
}

int key_choice_index(const struct key_def *k, const char *s)
{
    if (!k->choices)
        return -1;
    size_t ls = strlen(s);
    int i = 0;
    for (const char *p = k->choices; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == ls && strncmp(p, s, len) == 0)
            return i;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

const char *key_choice_name(const struct key_def *k, int idx, char *buf, size_t n)
{
    buf[0] = '\0';
    int i = 0;
    for (const char *p = k->choices; p && *p; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (i == idx) {
            if (len >= n)
                len = n - 1;
            memcpy(buf, p, len);
            buf[len] = '\0';
            return buf;
        }
        if (!bar)
            break;
        p = bar + 1;
    }
    return buf;
}

/* "\"a\", \"b\", \"c\"" */
static void choices_quoted(const struct key_def *k, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    char one[64];
    for (int i = 0; *key_choice_name(k, i, one, sizeof one); i++)
        used += (size_t)snprintf(buf + used, used < n ? n - used : 0, "%s\"%s\"",
                                 i ? ", " : "", one);
}

static void range_text(const struct key_def *k, char *buf, size_t n)
{
    buf[0] = '\0';
    if (k->min > k->max)
        return;
    if (k->type == KEY_FLOAT)
        snprintf(buf, n, " in [%g, %g]", k->min, k->max);
    else
        snprintf(buf, n, " in [%.0f, %.0f]", k->min, k->max);
}

void key_describe_type(const struct key_def *k, char *buf, size_t n)
{
    char r[96], c[512];
    range_text(k, r, sizeof r);
    switch (k->type) {
    case KEY_INT: snprintf(buf, n, "integer%s", r); break;
    case KEY_FLOAT: snprintf(buf, n, "number%s", r); break;
    case KEY_BOOL: snprintf(buf, n, "boolean (true or false)"); break;
    case KEY_STRING: snprintf(buf, n, "string"); break;
    case KEY_ENUM:
        choices_quoted(k, c, sizeof c);
        snprintf(buf, n, "one of %s", c);
        break;
    case KEY_INT_LIST: snprintf(buf, n, "list of integers%s, e.g. [1, 2]", r); break;
    case KEY_ENUM_LIST:
        choices_quoted(k, c, sizeof c);
        snprintf(buf, n, "list of strings from %s", c);
        break;
    case KEY_SECTION:
        snprintf(buf, n, strstr(k->path, "stages") == k->path || strcmp(k->path, "stages") == 0
                             ? "list of groups ( { ... }, ... )" : "group { ... }");
        break;
    }
}

void key_kinds_text(const struct key_def *k, char *buf, size_t n)
{
    buf[0] = '\0';
    if (!k->kinds)
        return;
    size_t used = 0;
    int is_loss = k->scope == KEY_SCOPE_LOSS;
    int count = is_loss ? LOSS_KIND_COUNT : STAGE_KIND_COUNT;
    for (int i = 0; i < count; i++)
        if (k->kinds & (1u << i))
            used += (size_t)snprintf(buf + used, used < n ? n - used : 0, "%s%s",
                                     used ? ", " : "",
                                     is_loss ? loss_kind_name(i) : stage_kind_name(i));
}

void keys_print_reference(FILE *out, int markdown)
{
    char type[640], kinds[160];
    if (markdown)
        fprintf(out, "| key | type | default | applies to | meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < key_table_len; i++) {
        const struct key_def *k = &key_table[i];
        key_describe_type(k, type, sizeof type);
        key_kinds_text(k, kinds, sizeof kinds);
        const char *def = k->type == KEY_SECTION ? "" : k->def ? k->def : "required";
        if (markdown) {
            fprintf(out, "| `%s` | %s | %s%s%s | %s | %s |\n", k->path, type,
                    k->def && k->type != KEY_SECTION ? "`" : "", def,
                    k->def && k->type != KEY_SECTION ? "`" : "", kinds[0] ? kinds : "",
                    k->doc);
        } else {
            fprintf(out, "%s\n    %s; default %s%s%s\n    %s\n", k->path, type,
                    def[0] ? def : "-", kinds[0] ? "; in " : "", kinds, k->doc);
        }
    }
}

void key_value_text(struct kd_text *t, const struct key_def *k, const void *base)
{
    const void *p = (const char *)base + k->offset;
    char one[128];
    switch (k->type) {
    case KEY_INT: kd_text_add(t, "%" PRId64, *(const int64_t *)p); break;
    case KEY_FLOAT: kd_text_add(t, "%.17g", *(const double *)p); break;
    case KEY_BOOL: kd_text_add(t, "%s", *(const bool *)p ? "true" : "false"); break;
    case KEY_STRING: {
        const char *s = *(char *const *)p;
        kd_text_add(t, "\"");
        for (; s && *s; s++)
            kd_text_add(t, *s == '"' || *s == '\\' ? "\\%c" : *s == '\n' ? "\\n" : "%c", *s);
        kd_text_add(t, "\"");
        break;
    }
    case KEY_ENUM:
        kd_text_add(t, "\"%s\"", key_choice_name(k, *(const int *)p, one, sizeof one));
        break;
    case KEY_INT_LIST: {
        const struct int_list *l = p;
        kd_text_add(t, "[");
        for (int i = 0; i < l->n; i++)
            kd_text_add(t, "%s%" PRId64, i ? ", " : "", l->v[i]);
        kd_text_add(t, "]");
        break;
    }
    case KEY_ENUM_LIST: {
        const struct enum_list *l = p;
        kd_text_add(t, "[");
        for (int i = 0; i < l->n; i++)
            kd_text_add(t, "%s\"%s\"", i ? ", " : "", key_choice_name(k, l->v[i], one, sizeof one));
        kd_text_add(t, "]");
        break;
    }
    case KEY_SECTION: break;
    }
}
