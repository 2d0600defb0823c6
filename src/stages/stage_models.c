/* stage_models.c: model sources and output paths of the stages. */
#include "kd/stages/stage_models.h"
#include "kd/core/fsutil.h"
#include "kd/job/stage.h"
#include "kd/model/hf_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *stage_out_path(const struct job *job, const char *name)
{
    return fs_path_join(job->job.output_dir, name);
}

int stage_index(const struct job *job, const struct stage_cfg *st)
{
    return (int)(st - job->stages);
}

char *stage_teacher_dir(const struct job *job, int before)
{
    for (int i = before - 1; i >= 0; i--)
        if (job->stages[i].kind == STAGE_KIND_FINETUNE)
            return stage_out_path(job, "teacher");
    return job->teacher.checkpoint[0] ? strdup(job->teacher.checkpoint) : NULL;
}

char *stage_student_dir(const struct job *job, int index)
{
    char rel[512];
    snprintf(rel, sizeof rel, "students/%s", job->stages[index].name);
    return stage_out_path(job, rel);
}

int stage_last_distill(const struct job *job, int before)
{
    for (int i = before - 1; i >= 0; i--)
        if (job->stages[i].kind == STAGE_KIND_DISTILL)
            return i;
    return -1;
}

int stage_teacher_config(const struct job *job, const char *dir, int64_t vocab_size,
                         int32_t num_labels, struct bert_config *cfg, struct kd_err *err)
{
    if (dir) {
        char *p = fs_path_join(dir, "config.json");
        int rc = hf_config_read(p, cfg, NULL, err);
        free(p);
        if (rc)
            return -1;
        if (cfg->num_labels != num_labels) {
            /* a checkpoint without a task head reads num_labels 2; the data decide */
            cfg->num_labels = num_labels;
            cfg->problem = num_labels == 1 ? BERT_PROBLEM_REGRESSION
                                           : BERT_PROBLEM_CLASSIFICATION;
        }
        if (cfg->vocab_size < vocab_size) {
            kd_errf(err, "%s/config.json: vocab_size %lld is smaller than the job's "
                         "vocabulary (%lld tokens)", dir, (long long)cfg->vocab_size,
                    (long long)vocab_size);
            return -1;
        }
        return 0;
    }
    hf_config_defaults(cfg);
    cfg->vocab_size = job->teacher.vocab_size ? job->teacher.vocab_size : vocab_size;
    cfg->hidden_size = job->teacher.hidden;
    cfg->num_hidden_layers = job->teacher.layers;
    cfg->num_attention_heads = job->teacher.heads;
    cfg->intermediate_size = job->teacher.intermediate;
    cfg->max_position_embeddings = job->teacher.max_positions;
    cfg->num_labels = num_labels;
    cfg->problem = num_labels == 1 ? BERT_PROBLEM_REGRESSION : BERT_PROBLEM_CLASSIFICATION;
    hf_config_init_layers(cfg);
    return hf_config_validate(cfg, "teacher (job keys teacher.*)", err);
}

int stage_student_config(const struct job *job, const struct bert_config *teacher,
                         struct bert_config *cfg, struct kd_err *err)
{
    hf_config_defaults(cfg);
    cfg->vocab_size = teacher->vocab_size;
    cfg->hidden_size = job->student.hidden;
    cfg->num_hidden_layers = job->student.layers;
    cfg->num_attention_heads = job->student.heads;
    cfg->intermediate_size = job->student.intermediate;
    cfg->max_position_embeddings = teacher->max_position_embeddings;
    cfg->type_vocab_size = teacher->type_vocab_size;
    cfg->pad_token_id = teacher->pad_token_id;
    cfg->num_labels = teacher->num_labels;
    cfg->problem = teacher->problem;
    hf_config_init_layers(cfg);
    return hf_config_validate(cfg, "student (job keys student.*)", err);
}

void stage_hf_files(struct stage_files *l, const char *rel_dir)
{
    static const char *const names[] = {"config.json", "model.safetensors", "vocab.txt"};
    char rel[600];
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "%s/%s", rel_dir, names[i]);
        stage_files_add(l, rel);
    }
}

int stage_teacher_inputs(const struct job *job, int before, struct stage_files *in,
                         struct kd_err *err)
{
    for (int i = before - 1; i >= 0; i--)
        if (job->stages[i].kind == STAGE_KIND_FINETUNE) {
            stage_hf_files(in, "teacher");
            return 0;
        }
    if (job->teacher.checkpoint[0])
        return stage_files_add_user_dir(in, job->teacher.checkpoint, err);
    return 0;
}
