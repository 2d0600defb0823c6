/* job.h: a kd_hpc job as read from its libconfig file (job layer: knows
 * nothing of kernels). Every field is filled from the key table in keys.c,
 * defaults included, so the rest of the program never looks at libconfig.
 *
 * Field names follow the job-file keys (docs/job-config.md is generated from
 * the same table). */
#ifndef KD_JOB_JOB_H
#define KD_JOB_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct int_list {
    int n;
    int64_t *v;
};

/* A list of enum values (indices into the key's choices). */
struct enum_list {
    int n;
    int *v;
};

enum data_task { DATA_TASK_TSV, DATA_TASK_SYNTHETIC, DATA_TASK_SYNTHETIC_PAIR };
enum data_problem { DATA_PROBLEM_CLASSIFICATION, DATA_PROBLEM_REGRESSION };
enum data_bad_rows { DATA_BAD_ROWS_ERROR, DATA_BAD_ROWS_SKIP };
enum student_init { STUDENT_INIT_RANDOM, STUDENT_INIT_TEACHER_LAYERS, STUDENT_INIT_PCA };
enum stage_kind {
    STAGE_KIND_FINETUNE,
    STAGE_KIND_PRUNE,
    STAGE_KIND_EXTRACT,
    STAGE_KIND_DISTILL,
    STAGE_KIND_EVALUATE,
    STAGE_KIND_EXPORT,
    STAGE_KIND_COUNT
};
enum loss_kind { LOSS_KIND_HARD, LOSS_KIND_SOFT, LOSS_KIND_HIDDEN, LOSS_KIND_ATTENTION,
                 LOSS_KIND_COUNT };
enum extract_output { EXTRACT_LOGITS, EXTRACT_HIDDEN, EXTRACT_ATTENTION, EXTRACT_COUNT };
enum precision { PRECISION_FP32, PRECISION_FP16, PRECISION_BF16 };
enum token_sel { TOKEN_SEL_ALL, TOKEN_SEL_CLS };
enum optimizer_kind { OPTIMIZER_ADAMW, OPTIMIZER_ADAM };
enum lr_decay { LR_DECAY_LINEAR, LR_DECAY_COSINE, LR_DECAY_CONSTANT };
enum layer_map_kind { LAYER_MAP_UNIFORM, LAYER_MAP_LAST, LAYER_MAP_EXPLICIT };
enum hidden_metric { HIDDEN_METRIC_MSE, HIDDEN_METRIC_COSINE };
enum temp_schedule { TEMP_SCHEDULE_CONSTANT, TEMP_SCHEDULE_LINEAR };
/* Values equal kd/kd/loss_term.h's enum kd_soft_form and kd_attn_rows. */
enum soft_form { SOFT_FORM_KL, SOFT_FORM_CE };
enum attention_rows { ATTENTION_ROWS_REAL, ATTENTION_ROWS_ALL };
enum projection_init { PROJECTION_INIT_RANDOM, PROJECTION_INIT_LSTSQ };
enum distill_method { DISTILL_METHOD_ALL, DISTILL_METHOD_PID, DISTILL_METHOD_SID };
enum distill_mode { DISTILL_MODE_OFFLINE, DISTILL_MODE_ONLINE };
enum eval_split { EVAL_SPLIT_DEV, EVAL_SPLIT_TEST };

struct loss_cfg {
    int line;                 /* line in the job file (0 if from --set) */
    int kind;                 /* enum loss_kind */
    double weight;
    double temperature;
    double temperature_end;
    int temperature_schedule; /* enum temp_schedule */
    int metric;               /* enum hidden_metric */
    int map;                  /* enum layer_map_kind */
    struct int_list student_layers; /* explicit map: student layer j ... */
    struct int_list teacher_layers; /* ... takes teacher layer teacher_layers[j] */
    int tokens;               /* enum token_sel */
    int form;                 /* enum soft_form (soft) */
    int rows;                 /* enum attention_rows (attention) */
};

struct stage_cfg {
    int line;
    char *name;
    int kind;                 /* enum stage_kind */
    /* training (finetune, distill) */
    double epochs;
    int64_t max_steps;
    int64_t batch;
    int64_t accumulate;
    double lr;
    double warmup;            /* fraction of steps */
    int decay;                /* enum lr_decay */
    int optimizer;            /* enum optimizer_kind */
    double beta1, beta2, eps;
    double weight_decay;
    double grad_clip;
    double dropout;           /* < 0: model default */
    int64_t eval_every;
    /* distill */
    int method;               /* enum distill_method */
    int mode;                 /* enum distill_mode */
    int64_t teacher_ranks;    /* online mode */
    double switch_threshold;  /* PID/SID: advance when the stage loss falls below; 0 = equal split */
    int n_losses;
    struct loss_cfg *losses;
    /* extract */
    struct enum_list outputs; /* enum extract_output */
    struct int_list hidden_layers;
    struct int_list attention_layers;
    int tokens;               /* enum token_sel */
    int precision;            /* enum precision */
    bool compress;
    /* evaluate */
    int split;                /* enum eval_split */
    /* export */
    char *dir;
};

struct job {
    char *path;               /* the job file */
    struct {
        char *name;
        char *output_dir;
        int64_t seed;
        int64_t ranks;        /* 0: any; else the rank count the job is planned for */
        int log_level;        /* enum log_level */
        int64_t checkpoint_every;
        double store_budget_gb;
    } job;
    struct {
        int task;             /* enum data_task */
        char *train, *dev, *test;
        char *text_a, *text_b, *label;
        int problem;          /* enum data_problem */
        int64_t num_labels;   /* 0: from the data */
        int64_t max_seq_len;
        char *vocab;          /* "" : the teacher checkpoint's vocab.txt */
        bool lowercase;
        int bad_rows;         /* enum data_bad_rows */
        int64_t synthetic_train, synthetic_dev;
        double synthetic_noise;
    } data;
    struct {
        char *checkpoint;     /* "" : trained from scratch (finetune stage) */
        int64_t layers, hidden, heads, intermediate, vocab_size, max_positions;
        int64_t pipeline_stages;
        int64_t micro_batch;
    } teacher;
    struct {
        int64_t layers, hidden, heads, intermediate;
        int init;             /* enum student_init */
        struct int_list init_layers;
        char *checkpoint;
        int init_projections; /* enum projection_init */
    } student;
    int n_stages;
    struct stage_cfg *stages;
};

/* Errors collected while reading a job: every problem is reported, not just
 * the first. Each message is "FILE:LINE: setting PATH: ..." */
struct job_errors {
    int n, cap;
    char **msgs;
};

void job_errors_free(struct job_errors *e);
void job_errors_add(struct job_errors *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads, overrides (`--set PATH=VALUE`, applied in order), fills defaults and
 * validates a job file. Returns 0 when valid; otherwise -1 with every problem
 * in *errs (job is still freed-able). */
int job_load(struct job *job, const char *path, const char *const *overrides,
             int n_overrides, struct job_errors *errs);
void job_free(struct job *job);

/* Writes the resolved job (every key, defaults filled in) as libconfig text to
 * `path` through a temporary file and rename. */
int job_write_resolved(const struct job *job, const char *path, char *err, size_t errlen);

/* Prints every key with its value, marking defaults (the start-up echo). */
void job_echo(const struct job *job);

const char *stage_kind_name(int kind);
const char *loss_kind_name(int kind);
const struct stage_cfg *job_find_stage(const struct job *job, const char *name);

#endif
