/* stage_models.h: where the models of a job come from and go to (stages
 * layer). The output directory holds, per stage kind:
 *   <output_dir>/teacher/            finetune: the trained teacher (HF directory)
 *   <output_dir>/teacher.h5          extract: the teacher store
 *   <output_dir>/students/<stage>/   distill: that stage's student (HF directory)
 *   <output_dir>/curves/<stage>.csv  training curves; plots/ their PNGs
 *   <output_dir>/checkpoints/        training state for --resume
 *   <output_dir>/report.md, .csv     evaluate
 *   <export dir or output_dir/student> export
 * A stage finds its inputs from the job's stage list: the teacher is the
 * output of the last finetune stage before it, else teacher.checkpoint,
 * else a freshly initialised teacher (finetune from scratch). */
#ifndef KD_STAGES_STAGE_MODELS_H
#define KD_STAGES_STAGE_MODELS_H

#include "kd/core/error.h"
#include "kd/job/job.h"
#include "kd/model/bert_config.h"

/* <output_dir>/<name> (malloc'd). */
char *stage_out_path(const struct job *job, const char *name);

/* The teacher directory stage `before` (an index into job->stages) reads:
 * <output_dir>/teacher when a finetune stage precedes it, else
 * teacher.checkpoint (malloc'd), else NULL (no teacher checkpoint: a
 * finetune stage starts from a random teacher). */
char *stage_teacher_dir(const struct job *job, int before);

/* The student directory of distill stage `index` (malloc'd). */
char *stage_student_dir(const struct job *job, int index);
/* Index of the last distill stage before `before`, or -1. */
int stage_last_distill(const struct job *job, int before);

/* The teacher's architecture: the checkpoint's config.json when dir is not
 * NULL, else the teacher.* keys with the data's vocabulary and labels. */
int stage_teacher_config(const struct job *job, const char *dir, int64_t vocab_size,
                         int32_t num_labels, struct bert_config *cfg, struct kd_err *err);
/* The student's architecture from the student.* keys (position embeddings
 * and vocabulary as the teacher's, so it can be initialised from it). */
int stage_student_config(const struct job *job, const struct bert_config *teacher,
                         struct bert_config *cfg, struct kd_err *err);

/* Adds the teacher's files stage `before` reads to its inputs: the
 * products teacher/{config.json,model.safetensors} of a finetune stage, or
 * every file of teacher.checkpoint. Returns 0 or -1 with err. */
struct stage_files;
int stage_teacher_inputs(const struct job *job, int before, struct stage_files *in,
                         struct kd_err *err);
/* Adds the three files of a Hugging Face directory under the output
 * directory (rel_dir relative to it) to a file list. */
void stage_hf_files(struct stage_files *l, const char *rel_dir);

/* Index of stage st in job->stages. */
int stage_index(const struct job *job, const struct stage_cfg *st);

#endif
