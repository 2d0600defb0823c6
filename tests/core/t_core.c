/* t_core.c: core error formatting and progress arithmetic. */
#include "kd/core/error.h"
#include "kd/core/log.h"
#include "../tap.h"

#include <stdlib.h>
#include <string.h>

int main(void)
{
    struct kd_err e;
    ok(kd_errf(&e, "%s:%d: expected %s got %s", "a.cfg", 3, "int", "string") == -1,
       "kd_errf returns -1");
    ok_str(e.msg, "a.cfg:3: expected int got string", "kd_errf formats the message");
    kd_err_prefix(&e, "job %s", "x");
    ok_str(e.msg, "job x: a.cfg:3: expected int got string", "kd_err_prefix prepends context");
    char *s = kd_strdup("abc");
    ok(strcmp(s, "abc") == 0, "kd_strdup copies");
    free(s);
    double t0 = wall_seconds(), t1 = wall_seconds();
    ok(t1 >= t0, "monotonic clock does not go back");
    log_init(0, 1);
    log_set_timestamps(0);
    struct progress p;
    progress_begin(&p, "unit-test", "items", 10, 0.0);
    progress_update(&p, 10, "done");
    ok(p.t_last >= p.t_start, "progress records when it last printed");
    return done_testing();
}
