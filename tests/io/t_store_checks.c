/* t_store_checks.c: what the teacher store refuses, on one rank (MPI
 * singleton): provenance mismatches (teacher, vocab, data hashes, schema
 * name and major version; a newer minor version is accepted), corrupted
 * chunks found by Fletcher32 and reported with the dataset and example
 * range, interrupted or incomplete writes that must leave nothing at the
 * final path, invalid batches, and files that are not stores. */
#include "kd/io/teacher_store.h"
#include "t_store_fixture.h"
#include "../tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"
#define HX "abababababababababababababababababababababababababababababababab"

static int exists(const char *p) { return access(p, F_OK) == 0; }

static int open_with(const char *path, const struct store_expect *e, struct kd_err *err)
{
    store_reader_t *r = NULL;
    int rc = store_open(&r, path, NULL, e, err);
    store_close(r);
    return rc;
}

static int set_root_str(const char *path, const char *name, const char *value)
{
    struct kd_err err;
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    int rc = f >= 0 ? h5_attr_write_str(f, name, value, &err) : -1;
    if (f >= 0)
        H5Fclose(f);
    return rc;
}

static void provenance(const char *path)
{
    struct kd_err err = {""};
    struct store_expect e = {H1, H2, H3, 0};
    ok(open_with(path, &e, &err) == 0, "matching hashes and major version open");
    e.teacher_sha256 = HX;
    ok(open_with(path, &e, &err) < 0 &&
       strstr(err.msg, "teacher_sha256 differs: the store has " H1 ", expected " HX),
       "another teacher is refused naming both hashes: %s", err.msg);
    e = (struct store_expect){H1, HX, H3, 0};
    ok(open_with(path, &e, &err) < 0 &&
       strstr(err.msg, "vocab_sha256 differs: the store has " H2 ", expected " HX),
       "another vocabulary is refused naming both hashes");
    e = (struct store_expect){H1, H2, HX, 0};
    ok(open_with(path, &e, &err) < 0 &&
       strstr(err.msg, "data_sha256 differs: the store has " H3 ", expected " HX),
       "other data are refused naming both hashes");
    e = (struct store_expect){HX, HX, H3, 0};
    ok(open_with(path, &e, &err) < 0 && strstr(err.msg, "teacher_sha256 differs") &&
       strstr(err.msg, "vocab_sha256 differs") && !strstr(err.msg, "data_sha256"),
       "every difference is named, and only those");
    e = (struct store_expect){H1, H2, H3, 2};
    ok(open_with(path, &e, &err) < 0 &&
       strstr(err.msg, "schema_version differs: the store has 1.0 (major 1), expected "
                       "major version 2"),
       "a reader of another major version refuses: %s", err.msg);

    e = (struct store_expect){H1, H2, H3, 0};
    set_root_str(path, "schema_version", "2.0");
    ok(open_with(path, &e, &err) < 0 &&
       strstr(err.msg, "schema_version differs: the store has 2.0 (major 2), expected "
                       "major version 1 (1.x)"),
       "a store of major version 2 is refused: %s", err.msg);
    set_root_str(path, "schema_version", "1.7");
    ok(open_with(path, &e, &err) == 0, "a newer minor version (1.7) is read");
    set_root_str(path, "schema_version", "1");
    ok(open_with(path, &e, &err) < 0 && strstr(err.msg, "expected MAJOR.MINOR, got \"1\""),
       "a malformed version is refused: %s", err.msg);
    set_root_str(path, "schema_version", "1.0");
    set_root_str(path, "schema", "kd_hpc.checkpoint");
    ok(open_with(path, &e, &err) < 0 &&
       strstr(err.msg, "not a teacher store: attribute schema is \"kd_hpc.checkpoint\""),
       "another kind of file is refused: %s", err.msg);
    set_root_str(path, "schema", STORE_SCHEMA);
}

/* Flips bytes in the middle of chunk `idx` of a dataset; *start receives
 * the chunk's first coordinate. */
static int corrupt_chunk(const char *path, const char *name, hsize_t idx, hsize_t *start)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1; /* 1.10 refuses H5S_ALL here */
    hsize_t off[4] = {0}, size = 0;
    haddr_t addr = 0;
    unsigned mask = 0;
    int rc = sp >= 0 ? H5Dget_chunk_info(d, sp, idx, off, &mask, &addr, &size) : -1;
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
    if (rc < 0 || size < 16)
        return -1;
    *start = off[0];
    int fd = open(path, O_RDWR);
    unsigned char b[4];
    off_t at = (off_t)(addr + size / 2);
    if (fd < 0 || pread(fd, b, 4, at) != 4)
        return -1;
    for (int i = 0; i < 4; i++)
        b[i] ^= 0x5a;
    rc = pwrite(fd, b, 4, at) == 4 ? 0 : -1;
    close(fd);
    return rc;
}

static void corruption(const struct comm *c)
{
    struct store_spec s;
    struct kd_err err = {""};
    enum { N = 300 };
    int32_t lengths[N];
    char path[128];
    static float buf[32 * 32 * 4 * 4];
    fx_spec_full(&s, lengths, N, 32, H5_PREC_F16, STORE_TOKENS_ALL, 0);
    s.hidden_size = 64;
    snprintf(path, sizeof path, "t_store_bad.%ld.h5", (long)getpid());
    if (fx_write(path, c, &s, 32, &err) < 0) {
        ok(0, "store written: %s", err.msg);
        return;
    }
    hsize_t h0 = 0, a0 = 0;
    int rc = corrupt_chunk(path, "/hidden/layer_02", 1, &h0);
    ok(rc == 0 && h0 > 0, "4 bytes flipped inside chunk 1 of /hidden/layer_02 (first "
       "example %llu)", (unsigned long long)h0);
    rc = corrupt_chunk(path, "/attention/layer_03", 0, &a0);
    ok(rc == 0, "4 bytes flipped inside chunk 0 of /attention/layer_03");
    store_reader_t *r = NULL;
    if (!ok(store_open(&r, path, NULL, NULL, &err) == 0, "the corrupted store still opens")) {
        diag("%s", err.msg);
        return;
    }
    char want[128];
    rc = store_read_f32(r, STORE_DS_HIDDEN, 2, (int64_t)h0, 2, buf, &err);
    snprintf(want, sizeof want, "/hidden/layer_02: examples [%llu, %llu): checksum mismatch "
             "(Fletcher32)", (unsigned long long)h0, (unsigned long long)h0 + 2);
    ok(rc < 0 && strstr(err.msg, want) && strstr(err.msg, path),
       "reading the corrupted hidden chunk fails naming file, dataset and range: %s", err.msg);
    ok(store_read_f32(r, STORE_DS_HIDDEN, 2, 0, 2, buf, &err) == 0,
       "an intact chunk of the same dataset still reads");
    ok(store_read_f32(r, STORE_DS_HIDDEN, 3, (int64_t)h0, 2, buf, &err) == 0,
       "the same examples of another layer still read");
    rc = store_read_f32(r, STORE_DS_ATTENTION, 3, 5, 3, buf, &err);
    ok(rc < 0 && strstr(err.msg, "/attention/layer_03: examples [5, 8): checksum mismatch"),
       "reading corrupted ragged attention names the examples: %s", err.msg);
    store_close(r);
    remove(path);
}

static void atomicity(const struct comm *c)
{
    struct store_spec s;
    struct kd_err err = {""};
    int32_t lengths[10];
    char path[128];
    fx_spec_full(&s, lengths, 10, 6, H5_PREC_BF16, STORE_TOKENS_ALL, 0);
    snprintf(path, sizeof path, "t_store_atomic.%ld.h5", (long)getpid());

    /* an old file at the path stays intact until the new one is complete */
    FILE *old = fopen(path, "w");
    fputs("previous store\n", old);
    fclose(old);
    store_writer_t *w = NULL;
    struct fx_batch fb;
    ok(store_create(&w, path, c, &s, &fx_prov, &err) == 0, "writer created");
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    ok_str(store_writer_tmp_path(w), tmp, "written under <path>.tmp.<pid of rank 0>");
    fx_batch_fill(&fb, &s, 0, 4);
    ok(store_write_batch(w, &fb.b, &err) == 0, "a batch written");
    fx_batch_free(&fb);
    ok(exists(tmp), "the temporary file exists while writing");
    old = fopen(path, "r");
    char line[64] = "";
    ok(old && fgets(line, sizeof line, old) && strcmp(line, "previous store\n") == 0,
       "the old file at the path is untouched while writing");
    if (old)
        fclose(old);

    /* a batch without one of its arrays is refused; nothing is written */
    fx_batch_fill(&fb, &s, 4, 3);
    fb.b.decision_votes = NULL;
    ok(store_write_batch(w, &fb.b, &err) < 0 && strstr(err.msg, "[4, 7): no data for "
                                                       "/decision/votes"),
       "a batch missing an array is refused naming it: %s", err.msg);
    fx_batch_free(&fb);
    fx_batch_fill(&fb, &s, 7, 3);
    fb.b.first = 8; /* arrays of 3 valid examples, placed past the end */
    ok(store_write_batch(w, &fb.b, &err) < 0 && strstr(err.msg, "[8, 11) are outside [0, 10)"),
       "a batch past the end is refused: %s", err.msg);
    fx_batch_free(&fb);

    /* finishing with examples 4..9 missing fails and leaves nothing new */
    ok(store_finish(w, &err) < 0 &&
       strstr(err.msg, "incomplete: 6 of 10 examples were never written (the first is "
                       "example 4)"),
       "an incomplete store is not finished: %s", err.msg);
    ok(!exists(tmp), "the temporary file is removed");
    old = fopen(path, "r");
    ok(old && fgets(line, sizeof line, old) && strcmp(line, "previous store\n") == 0,
       "the old file is still the one at the path");
    if (old)
        fclose(old);
    remove(path);

    /* a writer given up half way leaves neither file */
    ok(store_create(&w, path, c, &s, &fx_prov, &err) == 0, "second writer created");
    fx_batch_fill(&fb, &s, 0, 5);
    store_write_batch(w, &fb.b, &err);
    fx_batch_free(&fb);
    store_abort(w);
    ok(!exists(path) && !exists(tmp), "store_abort leaves no file at the path or temp name");

    /* the complete write replaces an old file in one step */
    old = fopen(path, "w");
    fputs("previous store\n", old);
    fclose(old);
    ok(fx_write(path, c, &s, 3, &err) == 0 && !exists(tmp), "a complete store replaces it");
    ok(open_with(path, NULL, &err) == 0, "and opens as a store");
    remove(path);

    /* a failing create (no such directory) reports HDF5's reason */
    ok(store_create(&w, "no-such-dir/t.h5", c, &s, &fx_prov, &err) < 0 &&
       strstr(err.msg, "no-such-dir/t.h5") && strstr(err.msg, "H5Fcreate: ") &&
       (strstr(err.msg, "unable to") || strstr(err.msg, "NO_SUCH_FILE")),
       "create in a missing directory fails with the decoded HDF5 stack: %s", err.msg);
    struct store_provenance bad = fx_prov;
    bad.vocab_sha256 = "12ab";
    ok(store_create(&w, path, c, &s, &bad, &err) < 0 &&
       strstr(err.msg, "vocab_sha256: expected 64 lower-case hex digits, got \"12ab\""),
       "a malformed hash is refused before anything is created: %s", err.msg);
    ok(!exists(path), "and nothing was created");
}

static void not_a_store(void)
{
    struct kd_err err = {""};
    char path[128];
    snprintf(path, sizeof path, "t_store_text.%ld.h5", (long)getpid());
    FILE *f = fopen(path, "w");
    fputs("not hdf5\n", f);
    fclose(f);
    ok(open_with(path, NULL, &err) < 0 && strstr(err.msg, "cannot open: H5Fopen"),
       "a text file is refused with HDF5's reason: %s", err.msg);
    hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(h);
    ok(open_with(path, NULL, &err) < 0 && strstr(err.msg, "attribute 'schema' is missing"),
       "an HDF5 file without a schema attribute is refused: %s", err.msg);
    remove(path);
}

int main(int argc, char **argv)
{
    struct comm c;
    comm_init(&c, &argc, &argv);
    struct store_spec s;
    struct kd_err err = {""};
    int32_t lengths[12];
    char path[128];
    fx_spec_full(&s, lengths, 12, 8, H5_PREC_F32, STORE_TOKENS_CLS, 0);
    snprintf(path, sizeof path, "t_store_prov.%ld.h5", (long)getpid());
    if (ok(fx_write(path, &c, &s, 5, &err) == 0, "store for provenance checks written"))
        provenance(path);
    else
        diag("%s", err.msg);
    remove(path);
    corruption(&c);
    atomicity(&c);
    not_a_store();
    comm_finalize(&c);
    return done_testing();
}
