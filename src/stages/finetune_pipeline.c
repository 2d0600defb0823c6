/* finetune_pipeline.c: pipeline-parallel finetuning (see the header). */
#include "kd/stages/finetune_pipeline.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/log.h"

int finetune_pipeline(const struct stage_ctx *ctx, struct stage_data *sd,
                      const struct dataset *dev, const struct bert_config *cfg,
                      const char *src)
{
    (void)sd, (void)dev, (void)cfg, (void)src;
    log_error("stage \"%s\": teacher.pipeline_stages > 1 is not available in this build",
              ctx->stage->name);
    return KD_EXIT_RUNTIME;
}
