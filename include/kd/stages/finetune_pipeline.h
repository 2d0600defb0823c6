/* finetune_pipeline.h: the finetune stage with the teacher's layers split
 * over teacher.pipeline_stages ranks (stages layer, over parallel/pipeline). */
#ifndef KD_STAGES_FINETUNE_PIPELINE_H
#define KD_STAGES_FINETUNE_PIPELINE_H

#include "kd/job/stage.h"
#include "kd/model/bert_config.h"
#include "kd/stages/stage_data.h"

/* Trains and saves the teacher (src: checkpoint directory or NULL);
 * returns a kd_exit code. */
int finetune_pipeline(const struct stage_ctx *ctx, struct stage_data *sd,
                      const struct dataset *dev, const struct bert_config *cfg,
                      const char *src);

#endif
