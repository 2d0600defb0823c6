/* stage.c: the stage registry and runner. Stage kinds that are not built
 * yet are reported as such and skipped, so a job always says what it did. */
#include "kd/job/stage.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/log.h"
#include "kd/core/signals.h"

#include <stddef.h>
#include <string.h>

/* One line per implemented stage kind. */
static const struct stage_impl *const registry[] = {
    NULL,
};

static const struct stage_impl *find_impl(int kind)
{
    for (size_t i = 0; i < sizeof registry / sizeof *registry; i++)
        if (registry[i] && registry[i]->kind == kind)
            return registry[i];
    return NULL;
}

int stage_run_all(const struct job *job, const struct job_plan *plan, const struct comm *comm,
                  const char *only, int resume, int force)
{
    int ran = 0, skipped = 0;
    for (int i = 0; i < job->n_stages; i++) {
        const struct stage_cfg *st = &job->stages[i];
        if (only && strcmp(only, st->name) != 0)
            continue;
        const struct stage_impl *impl = find_impl(st->kind);
        if (!impl) {
            log_warn0("stage %d/%d \"%s\" (%s): this kind of stage is not available in this "
                      "build of kd_hpc; skipped", i + 1, job->n_stages, st->name,
                      stage_kind_name(st->kind));
            skipped++;
            continue;
        }
        log_info0("stage %d/%d \"%s\" (%s): starting", i + 1, job->n_stages, st->name,
                  stage_kind_name(st->kind));
        double t0 = log_elapsed();
        struct stage_ctx ctx = {job, plan, comm, st, resume, force};
        int rc = impl->run(&ctx);
        if (rc)
            return rc;
        if (signals_interrupted())
            return KD_EXIT_INTERRUPTED;
        log_info0("stage %d/%d \"%s\" (%s): finished in %.1f s", i + 1, job->n_stages,
                  st->name, stage_kind_name(st->kind), log_elapsed() - t0);
        ran++;
    }
    log_info0("job \"%s\": %d stage%s run, %d skipped (not available in this build)",
              job->job.name, ran, ran == 1 ? "" : "s", skipped);
    return KD_EXIT_OK;
}
