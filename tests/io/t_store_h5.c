/* t_store_h5.c: the HDF5 helpers under the teacher store: fp16/bf16
 * conversions against an independent reference (exhaustive over all 2^16
 * encodings, random values and exact ties, through both the vector and the
 * scalar paths), the fast Fletcher32 against a plain transcription of
 * HDF5's definition, the HDF5 float types, attribute round trips and the
 * decoded error stack. Single process, no MPI. */
#include "kd/io/h5.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reference decoding of binary16 / bfloat16 by arithmetic, not bits. */
static double ref_decode(uint16_t h, int ebits, int mbits, int bias)
{
    int sign = h >> 15, e = (h >> mbits) & ((1 << ebits) - 1), m = h & ((1 << mbits) - 1);
    double v;
    if (e == (1 << ebits) - 1)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, 1 - bias - mbits);
    else
        v = ldexp(m + (double)(1 << mbits), e - bias - mbits);
    return sign ? -v : v;
}

/* Reference rounding of x to a float with mbits mantissa bits, minimum
 * normal exponent emin and largest finite value fmax, half to even. */
static double ref_round(double x, int mbits, int emin, double fmax)
{
    if (isnan(x) || isinf(x) || x == 0)
        return x;
    int e;
    frexp(fabs(x), &e); /* |x| = f * 2^e, f in [0.5, 1) */
    e -= 1;
    if (e < emin)
        e = emin;
    double ulp = ldexp(1.0, e - mbits);
    double q = nearbyint(x / ulp) * ulp; /* default mode: half to even */
    /* beyond the largest finite value by half an ulp or more: infinity */
    double half_ulp_max = ldexp(1.0, (int)floor(log2(fmax)) - mbits - 1);
    if (fabs(x) >= fmax + half_ulp_max)
        return x < 0 ? -INFINITY : INFINITY;
    return q;
}

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    uint32_t bits = *s;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int same_value(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

static void test_conversions(void)
{
    /* every encoding decodes like the reference and re-encodes to itself */
    static uint16_t all[65536], back[65536];
    static float dec[65536];
    for (int i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    const char *names[2] = {"fp16", "bf16"};
    for (int kind = 0; kind < 2; kind++) {
        int eb = kind ? 8 : 5, mb = kind ? 7 : 10, bias = kind ? 127 : 15;
        if (kind)
            h5_bf16_to_f32(dec, all, 65536);
        else
            h5_f16_to_f32(dec, all, 65536);
        int bad_dec = 0, bad_enc = 0;
        if (kind)
            h5_f32_to_bf16(back, dec, 65536);
        else
            h5_f32_to_f16(back, dec, 65536);
        for (int i = 0; i < 65536; i++) {
            double want = ref_decode((uint16_t)i, eb, mb, bias);
            bad_dec += !same_value(dec[i], want);
            if (!isnan(want))
                bad_enc += back[i] != i;
            else
                bad_enc += ((back[i] >> mb) & ((1 << eb) - 1)) != (1 << eb) - 1 ||
                           (back[i] & ((1 << mb) - 1)) == 0;
        }
        ok(bad_dec == 0, "%s: all 65536 encodings decode as the reference (%d differ)",
           names[kind], bad_dec);
        ok(bad_enc == 0, "%s: every encoding re-encodes to itself, NaN stays NaN (%d differ)",
           names[kind], bad_enc);
    }

    /* random floats of every magnitude, and exact ties, rounded like the
     * reference; n = 8k + 5 so both the vector and the scalar tail run */
    enum { N = 8 * 4096 + 5 };
    static float x[N], y[N];
    static uint16_t h[N];
    for (int kind = 0; kind < 2; kind++) {
        int mb = kind ? 7 : 10, emin = kind ? -126 : -14;
        double fmax = kind ? ldexp(255.0, 120) /* (2 - 2^-7) 2^127 */ : 65504.0;
        unsigned seed = 12345u + (unsigned)kind;
        for (int i = 0; i < N; i++) {
            if (i % 4 == 0) {
                /* a tie: halfway between two neighbours, odd or even below */
                int e = emin + (int)(frand(&seed) != 0 ? (unsigned)(seed >> 8) % 30u : 0u);
                if (kind == 0 && e > 15)
                    e = 15;
                double ulp = ldexp(1.0, e - mb);
                double k = (double)((seed >> 3) % (1u << mb)) + (double)(1u << mb);
                x[i] = (float)((k + 0.5) * ulp);
            } else if (i % 4 == 1) {
                /* around the fp16 range and its subnormals */
                x[i] = (float)ldexp((double)(seed % 100000u) / 1000.0,
                                    (int)((seed >> 17) % 40u) - 30);
                frand(&seed);
            } else {
                x[i] = frand(&seed);
            }
            if (i % 3 == 0)
                x[i] = -x[i];
        }
        if (kind) {
            h5_f32_to_bf16(h, x, N);
            h5_bf16_to_f32(y, h, N);
        } else {
            h5_f32_to_f16(h, x, N);
            h5_f16_to_f32(y, h, N);
        }
        int bad = 0, first = -1;
        for (int i = 0; i < N; i++) {
            double want = ref_round(x[i], mb, emin, fmax);
            if (!same_value(y[i], want) && bad++ == 0)
                first = i;
        }
        ok(bad == 0, "%s: %d random values and ties round to nearest even like the "
           "reference (%d differ)", names[kind], N, bad);
        if (first >= 0)
            diag("first: x = %.9g -> %.9g, reference %.9g", x[first], y[first],
                 ref_round(x[first], mb, emin, fmax));
    }
    /* specials */
    float sp[4] = {65519.0f, 65520.0f, -1e30f, 5.9604645e-08f * 0.5f};
    uint16_t hs[4];
    h5_f32_to_f16(hs, sp, 4);
    ok(hs[0] == 0x7bff && hs[1] == 0x7c00 && hs[2] == 0xfc00 && hs[3] == 0x0000,
       "fp16: 65519 -> max, 65520 -> Inf, -1e30 -> -Inf, half the smallest subnormal -> 0 "
       "(got %04x %04x %04x %04x)", hs[0], hs[1], hs[2], hs[3]);
}

/* HDF5's Fletcher32 as its documentation and source define it, written
 * out plainly: big-endian 16-bit words, sums folded every 360 words. */
static uint32_t ref_fletcher32(const unsigned char *p, size_t len)
{
    uint32_t s1 = 0, s2 = 0;
    size_t words = len / 2;
    while (words) {
        size_t n = words > 360 ? 360 : words;
        words -= n;
        for (; n; n--, p += 2) {
            s1 += ((uint32_t)p[0] << 8) | p[1];
            s2 += s1;
        }
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    if (len % 2) {
        s1 += (uint32_t)p[0] << 8;
        s2 += s1;
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    s1 = (s1 & 0xffff) + (s1 >> 16);
    s2 = (s2 & 0xffff) + (s2 >> 16);
    return (s2 << 16) | s1;
}

static void test_fletcher(void)
{
    enum { MAX = 3 << 20 };
    unsigned char *b = malloc(MAX);
    unsigned seed = 99;
    int bad = 0, trials = 0;
    /* lengths around the vector block sizes, odd lengths, and data whose
     * sums are 0 or multiples of 65535 (all zero, all 0xff, mixtures) */
    for (int t = 0; t < 1500; t++) {
        seed = seed * 1664525u + 1013904223u;
        size_t len = t < 1000 ? 1 + (size_t)t * 7 % 4099 : 1 + (size_t)seed % (MAX - 1);
        int kind = t % 5;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1664525u + 1013904223u;
            b[i] = kind == 0   ? 0
                   : kind == 1 ? 0xff
                   : kind == 2 ? (seed >> 31 ? 0xff : 0)
                               : (unsigned char)(seed >> 24);
        }
        if (kind == 4)
            memset(b, 0, len / 2);
        bad += h5_fletcher32(b, len) != ref_fletcher32(b, len);
        trials++;
    }
    ok(bad == 0, "Fletcher32 equals HDF5's definition on %d buffers of 1 B to 3 MiB (%d "
       "differ)", trials, bad);
    ok(h5_fletcher32_selftest() == 0, "Fletcher32 known answers of HDF5 1.10");
    free(b);
}

static void test_types(void)
{
    struct kd_err err = {""};
    enum h5_prec all[3] = {H5_PREC_F32, H5_PREC_F16, H5_PREC_BF16};
    for (int i = 0; i < 3; i++) {
        hid_t t = h5_prec_type(all[i], &err);
        enum h5_prec back = H5_PREC_F32;
        int r = t >= 0 ? h5_prec_of_type(t, &back, &err) : -1;
        ok(t >= 0 && r == 0 && back == all[i] && H5Tget_size(t) == h5_prec_size(all[i]),
           "%s: HDF5 type of %zu bytes, recognised back", h5_prec_name(all[i]),
           h5_prec_size(all[i]));
        if (t >= 0)
            H5Tclose(t);
    }
    enum h5_prec p;
    ok(h5_prec_of_type(H5T_IEEE_F64LE, &p, &err) < 0 && strstr(err.msg, "float of 8 bytes"),
       "a float64 is refused with its description: %s", err.msg);
    ok(h5_prec_parse("fp8", &p, &err) < 0 && strstr(err.msg, "\"fp8\""),
       "an unknown precision name is refused: %s", err.msg);
}

static void test_attributes(const char *path)
{
    struct kd_err err = {""};
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ok(f >= 0, "create %s", path);
    int32_t v3[3] = {4, 8, 12}, r3[5];
    size_t n = 0;
    int64_t i64 = 0;
    double f64 = 0;
    char *s = NULL, *j = NULL;
    int w = h5_attr_write_str(f, "name", "kd_hpc \xc3\xa9t\xc3\xa9", &err) |
            h5_attr_write_str(f, "name", "overwritten", &err) |
            h5_attr_write_json(f, "cfg", "{\"a\": [1, 2]}", &err) |
            h5_attr_write_i32(f, "i32", -7, &err) |
            h5_attr_write_i64(f, "i64", 1LL << 40, &err) |
            h5_attr_write_i32s(f, "list", v3, 3, &err) | h5_attr_write_f64(f, "f64", 0.25, &err);
    ok(w == 0, "attributes written (%s)", w ? err.msg : "");
    ok(h5_attr_read_str(f, "name", &s, &err) == 0 && strcmp(s, "overwritten") == 0,
       "string attribute round trip, rewriting replaces");
    ok(h5_attr_read_json(f, "cfg", &j, &err) == 0 && strcmp(j, "{\"a\": [1, 2]}") == 0,
       "JSON attribute kept as given");
    ok(h5_attr_read_i64(f, "i64", &i64, &err) == 0 && i64 == 1LL << 40, "int64 attribute");
    ok(h5_attr_read_i64(f, "i32", &i64, &err) == 0 && i64 == -7, "int32 read as int64");
    ok(h5_attr_read_i32s(f, "list", r3, 5, &n, &err) == 0 && n == 3 && r3[2] == 12,
       "int32 array attribute");
    ok(h5_attr_read_f64(f, "f64", &f64, &err) == 0 && f64 == 0.25, "float64 attribute");
    free(s);
    free(j);
    s = NULL;
    ok(h5_attr_write_json(f, "bad", "{\"a\": ", &err) < 0 && strstr(err.msg, "not valid JSON"),
       "invalid JSON refused: %s", err.msg);
    ok(h5_attr_read_str(f, "absent", &s, &err) < 0 &&
       strstr(err.msg, "attribute 'absent' is missing"), "missing attribute named: %s",
       err.msg);
    ok(h5_attr_read_str(f, "i32", &s, &err) < 0 && strstr(err.msg, "expected a scalar string"),
       "wrong kind named: %s", err.msg);
    ok(h5_attr_read_i32s(f, "list", r3, 2, &n, &err) < 0 && strstr(err.msg, "got 3"),
       "too many values named: %s", err.msg);
    ok(h5_exists(f, "/no/such/path", &err) == 0, "h5_exists: missing intermediate group is 0");
    H5Fclose(f);
}

/* A function in the project's shape: one H5_CHECK, one cleanup label. */
static int open_missing(const char *path, struct kd_err *err)
{
    int rc = -1;
    hid_t f = H5I_INVALID_HID;
    H5_CHECK(err, f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), "%s: open", path);
    rc = 0;
done:
    h5_close_any(&f);
    return rc;
}

int main(void)
{
    h5_init();
    test_conversions();
    test_fletcher();
    test_types();
    char path[64];
    snprintf(path, sizeof path, "t_store_h5.%ld.h5", (long)getpid());
    test_attributes(path);
    remove(path);

    struct kd_err err = {""};
    int r = open_missing("no-such-dir/x.h5", &err);
    ok(r < 0 && strstr(err.msg, "no-such-dir/x.h5: open: H5Fopen: ") &&
       strstr(err.msg, "unable to open file"),
       "H5_CHECK names the context, the HDF5 function and the decoded stack: %s", err.msg);
    char stack[256];
    ok(h5_stack_text(stack, sizeof stack) == 0, "the stack is cleared after the report");
    return done_testing();
}
