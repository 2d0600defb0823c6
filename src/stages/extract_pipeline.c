/* extract_pipeline.c: extract with the teacher split over pipeline stages. */
#include "kd/stages/extract_common.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/log.h"

int extract_pipeline(const struct stage_ctx *ctx, const struct dataset *d,
                     const struct bert_config *cfg, const char *teacher_dir,
                     const struct store_spec *spec, const struct store_provenance *prov,
                     const char *path)
{
    (void)d, (void)cfg, (void)teacher_dir, (void)spec, (void)prov, (void)path;
    log_error("stage \"%s\": teacher.pipeline_stages > 1 is not available in this build",
              ctx->stage->name);
    return KD_EXIT_RUNTIME;
}
