/* t_store_needs.c: what an extract stage stores is the union of its own
 * keys and what the losses of the distill stages reading the store need
 * (teacher_outputs_spec), and the store's fingerprint text follows those
 * losses (teacher_outputs_config).
 *
 * Jobs are written to a temporary directory and loaded as users' files;
 * the teacher's shape is the teacher.* keys (4 layers of 32), the student
 * has 2 layers; the data are 6 examples of up to 16 tokens (only the
 * lengths matter to the spec). */
#include "kd/job/job.h"
#include "kd/stages/stage_models.h"
#include "kd/stages/teacher_outputs.h"
#include "../tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/kd_t_store_needs_XXXXXX";

static const char *head =
    "job = { name = \"needs\"; };\n"
    "data = { task = \"synthetic\"; max_seq_len = 16; };\n"
    "teacher = { layers = 4; hidden = 32; heads = 4; intermediate = 64; };\n"
    "student = { layers = 2; hidden = 16; heads = 4; intermediate = 32; };\n";

static int load(struct job *job, const char *stages)
{
    char path[256];
    snprintf(path, sizeof path, "%s/job.cfg", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        bail_out("cannot write %s", path);
    fprintf(f, "%sstages = (\n%s\n);\n", head, stages);
    fclose(f);
    struct job_errors errs = {0};
    int rc = job_load(job, path, NULL, 0, &errs);
    for (int k = 0; k < errs.n; k++)
        diag("%s", errs.msgs[k]);
    job_errors_free(&errs);
    return rc;
}

static int32_t lengths[6] = {16, 5, 9, 16, 3, 12};
static const struct dataset data = {.n = 6, .max_seq_len = 16, .lengths = lengths};

/* The spec of stage `index` for the job's own teacher shape. */
static int spec_of(const struct job *job, int index, struct store_spec *spec, struct kd_err *err)
{
    struct bert_config cfg;
    if (stage_teacher_config(job, NULL, 64, 2, &cfg, err))
        return -1;
    return teacher_outputs_spec(job, index, &cfg, &data, spec, err);
}

static int same_layers(const int32_t *got, int n, const int32_t *want, int nw)
{
    if (n != nw)
        return 0;
    for (int i = 0; i < n; i++)
        if (got[i] != want[i])
            return 0;
    return 1;
}

static void show_layers(const char *what, const int32_t *v, int n)
{
    char buf[256];
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%d", i ? ", " : "", v[i]);
    diag("%s: [%s]", what, buf);
}

#define HAS(spec, ds) (((spec).datasets & STORE_BIT(ds)) != 0)

static void test_no_layers_named(void)
{
    struct job job;
    struct kd_err err;
    struct store_spec spec;
    ok(load(&job,
            "  { name = \"extract\"; kind = \"extract\"; },\n"
            "  { name = \"distill\"; kind = \"distill\";\n"
            "    losses = ( { kind = \"soft\"; },\n"
            "               { kind = \"hidden\"; map = \"explicit\"; student_layers = [1, 2];\n"
            "                 teacher_layers = [1, 3]; },\n"
            "               { kind = \"attention\"; map = \"uniform\"; } ); }") == 0,
       "job: extract names no layers, distill maps hidden 1->1, 2->3 and attention uniformly");
    int rc = spec_of(&job, 0, &spec, &err);
    if (!ok(rc == 0, "store spec of the extract stage"))
        diag("%s", err.msg);
    static const int32_t hid[] = {1, 3}, att[] = {2, 4};
    ok(HAS(spec, STORE_DS_LOGITS), "logits stored (the stage's default output, soft needs them)");
    ok(HAS(spec, STORE_DS_HIDDEN) && spec.tokens == STORE_TOKENS_ALL,
       "hidden states added, all tokens (the hidden loss compares every token)");
    if (!ok(same_layers(spec.hidden_layers, spec.n_hidden_layers, hid, 2),
            "hidden layers = the mapped teacher layers 1, 3"))
        show_layers("got", spec.hidden_layers, spec.n_hidden_layers);
    ok(HAS(spec, STORE_DS_ATTENTION) && spec.n_heads == 4,
       "attention maps added with every head (4)");
    if (!ok(same_layers(spec.attention_layers, spec.n_attention_layers, att, 2),
            "attention layers = the uniformly mapped teacher layers 2, 4"))
        show_layers("got", spec.attention_layers, spec.n_attention_layers);
    job_free(&job);
}

static void test_cls_and_union(void)
{
    struct job job;
    struct kd_err err;
    struct store_spec spec;
    ok(load(&job,
            "  { name = \"extract\"; kind = \"extract\"; outputs = [\"hidden\"];\n"
            "    hidden_layers = [4, 0]; tokens = \"cls\"; },\n"
            "  { name = \"d1\"; kind = \"distill\";\n"
            "    losses = ( { kind = \"hidden\"; metric = \"cosine\"; tokens = \"cls\"; } ); }") ==
           0,
       "job: extract stores [CLS] of layers 4, 0; distill compares [CLS] of layers 2, 4");
    ok(spec_of(&job, 0, &spec, &err) == 0, "store spec");
    static const int32_t hid[] = {0, 2, 4};
    if (!ok(same_layers(spec.hidden_layers, spec.n_hidden_layers, hid, 3),
            "hidden layers: the stage's 0, 4 and the loss's 2, ascending"))
        show_layers("got", spec.hidden_layers, spec.n_hidden_layers);
    ok(spec.tokens == STORE_TOKENS_CLS, "still [CLS] only: no loss compares every token");
    ok(!HAS(spec, STORE_DS_LOGITS) && !HAS(spec, STORE_DS_ATTENTION),
       "nothing else added (no soft or attention loss)");
    job_free(&job);

    ok(load(&job,
            "  { name = \"extract\"; kind = \"extract\"; outputs = [\"logits\"]; },\n"
            "  { name = \"d1\"; kind = \"distill\";\n"
            "    losses = ( { kind = \"hidden\"; tokens = \"cls\"; map = \"last\"; } ); },\n"
            "  { name = \"d2\"; kind = \"distill\";\n"
            "    losses = ( { kind = \"hidden\"; map = \"explicit\"; student_layers = [0];\n"
            "                 teacher_layers = [0]; } ); }") == 0,
       "job: two distill stages, one [CLS] at the last layer, one all tokens at the embeddings");
    ok(spec_of(&job, 0, &spec, &err) == 0, "store spec");
    static const int32_t two[] = {0, 4};
    ok(same_layers(spec.hidden_layers, spec.n_hidden_layers, two, 2) &&
           spec.tokens == STORE_TOKENS_ALL,
       "union over both stages: layers 0, 4, all tokens");
    job_free(&job);

    ok(load(&job,
            "  { name = \"extract\"; kind = \"extract\"; outputs = [\"hidden\"];\n"
            "    hidden_layers = [1]; tokens = \"cls\"; },\n"
            "  { name = \"d1\"; kind = \"distill\";\n"
            "    losses = ( { kind = \"hidden\"; map = \"last\"; } ); }") == 0,
       "job: extract asks for [CLS] only, the loss compares every token");
    ok(spec_of(&job, 0, &spec, &err) == 0 && spec.tokens == STORE_TOKENS_ALL,
       "the stage's tokens = \"cls\" is widened to all tokens");
    job_free(&job);
}

static void test_readers(void)
{
    struct job job;
    struct kd_err err;
    struct store_spec spec;
    ok(load(&job,
            "  { name = \"x1\"; kind = \"extract\"; },\n"
            "  { name = \"base\"; kind = \"distill\"; losses = ( { kind = \"hard\"; } ); },\n"
            "  { name = \"online\"; kind = \"distill\"; mode = \"online\"; teacher_ranks = 1;\n"
            "    losses = ( { kind = \"attention\"; } ); },\n"
            "  { name = \"x2\"; kind = \"extract\"; },\n"
            "  { name = \"late\"; kind = \"distill\"; losses = ( { kind = \"hidden\"; } ); }") == 0,
       "job: extract x1, a hard-only and an online distill, extract x2, a hidden distill");
    ok(!teacher_outputs_reads_store(&job, 0, 2) && teacher_outputs_reads_store(&job, 0, 1) &&
           !teacher_outputs_reads_store(&job, 0, 4) && teacher_outputs_reads_store(&job, 3, 4),
       "readers: x1 serves the offline stage before x2; x2 serves the one after it");
    ok(spec_of(&job, 0, &spec, &err) == 0 && !HAS(spec, STORE_DS_HIDDEN) &&
           !HAS(spec, STORE_DS_ATTENTION),
       "x1 stores no hidden states or attention (online and later stages read no store)");
    ok(spec_of(&job, 3, &spec, &err) == 0 && HAS(spec, STORE_DS_HIDDEN) &&
           spec.n_hidden_layers == 2,
       "x2 stores the hidden layers its reader maps");
    char *c0 = teacher_outputs_config(&job, 0), *c3 = teacher_outputs_config(&job, 3);
    ok(c0 && strcmp(c0, "reader.base.losses.[0].kind = \"hard\"\n") == 0,
       "fingerprint text of x1: the hard loss only");
    ok(c3 && strstr(c3, "reader.late.losses.[0].map = \"uniform\"\n") &&
           strstr(c3, "reader.late.losses.[0].tokens = \"all\"\n"),
       "fingerprint text of x2: its reader's map and tokens");
    if (c3)
        diag("x2:\n%s", c3);
    free(c0), free(c3);
    job_free(&job);
}

/* The store follows the losses that decide what is read, not the others. */
static void test_fingerprint_text(void)
{
    const char *fmt = "  { name = \"extract\"; kind = \"extract\"; },\n"
                      "  { name = \"distill\"; kind = \"distill\";\n"
                      "    losses = ( { kind = \"soft\"; temperature = %s; weight = %s; },\n"
                      "               { kind = \"hidden\"; map = \"%s\"; } ); }";
    char text[1024];
    struct job job;
    char *base, *other;
    snprintf(text, sizeof text, fmt, "2.0", "1.0", "uniform");
    ok(load(&job, text) == 0, "job with soft and hidden losses");
    base = teacher_outputs_config(&job, 0);
    job_free(&job);
    snprintf(text, sizeof text, fmt, "4.0", "0.5", "uniform");
    load(&job, text);
    other = teacher_outputs_config(&job, 0);
    ok(strcmp(base, other) == 0, "a new temperature and weight leave the store's text alone");
    free(other);
    job_free(&job);
    snprintf(text, sizeof text, fmt, "2.0", "1.0", "last");
    load(&job, text);
    other = teacher_outputs_config(&job, 0);
    ok(strcmp(base, other) != 0 && strstr(other, "reader.distill.losses.[1].map = \"last\""),
       "another layer map changes it");
    free(other);
    free(base);
    job_free(&job);
}

static void test_bad_map(void)
{
    struct job job;
    struct kd_err err;
    struct store_spec spec;
    ok(load(&job,
            "  { name = \"extract\"; kind = \"extract\"; },\n"
            "  { name = \"distill\"; kind = \"distill\";\n"
            "    losses = ( { kind = \"soft\"; },\n"
            "               { kind = \"hidden\"; map = \"explicit\"; student_layers = [2];\n"
            "                 teacher_layers = [4]; } ); }") == 0,
       "job mapping teacher layer 4");
    /* a checkpoint teacher with fewer layers than the job's keys planned */
    struct bert_config cfg;
    stage_teacher_config(&job, NULL, 64, 2, &cfg, &err);
    cfg.num_hidden_layers = 3;
    int rc = teacher_outputs_spec(&job, 0, &cfg, &data, &spec, &err);
    ok(rc == -1 && strstr(err.msg, "stage \"distill\"") && strstr(err.msg, "losses.[1]") &&
           strstr(err.msg, "teacher_layers"),
       "a loss mapping a layer the teacher lacks: the error names the stage, loss and key");
    diag("%s", err.msg);
    job_free(&job);
}

int main(void)
{
    if (!mkdtemp(dir))
        bail_out("mkdtemp failed");
    test_no_layers_named();
    test_cls_and_union();
    test_readers();
    test_fingerprint_text();
    test_bad_map();
    char path[256];
    snprintf(path, sizeof path, "%s/job.cfg", dir);
    unlink(path);
    rmdir(dir);
    return done_testing();
}
