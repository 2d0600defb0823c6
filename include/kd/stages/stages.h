/* stages.h: the stage implementations (one file each) the registry in
 * src/job/stage.c lists. */
#ifndef KD_STAGES_STAGES_H
#define KD_STAGES_STAGES_H

#include "kd/job/stage.h"

extern const struct stage_impl stage_finetune;
extern const struct stage_impl stage_extract;
extern const struct stage_impl stage_distill;
extern const struct stage_impl stage_evaluate;
extern const struct stage_impl stage_export;

#endif
