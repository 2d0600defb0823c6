/* student_setup.h: a distill stage's student initialisation from the job's
 * student.init (stages layer, over init/student_init.h): "random" (done by
 * the model's opening), "teacher_layers" (copies of the mapped teacher
 * layers, equal widths), "pca" (a narrower student in the top-k principal
 * axes of the teacher's hidden states, computed with ScaLAPACK over all
 * ranks from each rank's shard of up to STUDENT_PCA_ROWS training examples). */
#ifndef KD_STAGES_STUDENT_SETUP_H
#define KD_STAGES_STUDENT_SETUP_H

#include "kd/io/dataset.h"
#include "kd/job/job.h"
#include "kd/model/bert.h"
#include "kd/parallel/comm.h"

#define STUDENT_PCA_ROWS 256 /* examples over all ranks for the PCA */

/* Initialises s (already opened with random values) from the teacher at
 * teacher_dir. Collective. Returns 0 or -1 with err (the same on every rank). */
int student_setup(struct bert_model *s, const struct job *job, const char *teacher_dir,
                  const struct dataset *train, const struct comm *c, struct kd_err *err);

#endif
