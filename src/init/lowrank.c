/* lowrank.c: see lowrank.h. */
#include "kd/init/lowrank.h"
#include "kd/core/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lowrank_jacobi_eig(double *a, int64_t n, double *w, double *v)
{
    for (int64_t i = 0; i < n * n; i++)
        v[i] = (i % (n + 1)) == 0;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0, tot = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                *(i == j ? &tot : &off) += a[i * n + j] * a[i * n + j];
        if (off <= 1e-28 * (tot + off))
            break;
        for (int64_t p = 0; p < n - 1; p++)
            for (int64_t q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0)
                    continue;
                /* rotation zeroing a[p][q] (Golub & Van Loan, Alg. 8.5.2) */
                double th = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int64_t k = 0; k < n; k++) {
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (int64_t k = 0; k < n; k++) {
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (int64_t k = 0; k < n; k++) {
                    double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int64_t i = 0; i < n; i++)
        w[i] = a[i * n + i];
}

/* Rows of x (h, m) = columns of x^T: modified Gram-Schmidt gives qt (h, m)
 * with orthonormal (or zero, for dependent rows) rows and the upper
 * triangular r (h,h) with x^T = qt^T r. */
static void mgs(double *qt, double *r, const double *x, int64_t h, int64_t m)
{
    memcpy(qt, x, (size_t)(h * m) * sizeof *qt);
    memset(r, 0, (size_t)(h * h) * sizeof *r);
    double scale = 0;
    for (int64_t i = 0; i < h * m; i++)
        scale = fmax(scale, fabs(x[i]));
    for (int64_t i = 0; i < h; i++) {
        double *qi = qt + i * m;
        for (int64_t j = 0; j < i; j++) {
            double dot = 0;
            for (int64_t t = 0; t < m; t++)
                dot += qt[j * m + t] * qi[t];
            r[j * h + i] = dot;
            for (int64_t t = 0; t < m; t++)
                qi[t] -= dot * qt[j * m + t];
        }
        double nrm = 0;
        for (int64_t t = 0; t < m; t++)
            nrm += qi[t] * qi[t];
        nrm = sqrt(nrm);
        /* a row dependent on the previous ones (up to rounding) adds
         * nothing: zero it rather than normalise noise */
        if (nrm <= 1e-12 * scale * sqrt((double)m)) {
            memset(qi, 0, (size_t)m * sizeof *qi);
            continue;
        }
        r[i * h + i] = nrm;
        for (int64_t t = 0; t < m; t++)
            qi[t] /= nrm;
    }
}

double lowrank_factor(double *As, double *Bs, const double *A, const double *B, int64_t h,
                      int64_t m, int64_t n, int64_t r)
{
    double *qa = kd_malloc((size_t)(h * m) * sizeof *qa), *qb = kd_malloc((size_t)(h * n) * 8);
    double *ra = kd_malloc((size_t)(h * h) * 8), *rb = kd_malloc((size_t)(h * h) * 8);
    double *c = kd_calloc((size_t)(h * h), 8), *g = kd_calloc((size_t)(h * h), 8);
    double *y = kd_malloc((size_t)(h * h) * 8), *s2 = kd_malloc((size_t)h * 8);
    mgs(qa, ra, A, h, m);
    mgs(qb, rb, B, h, n);
    /* M = qa^T ra rb^T qb = qa^T C qb, C = ra rb^T (h,h) */
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < h; j++)
            for (int64_t t = 0; t < h; t++)
                c[i * h + j] += ra[i * h + t] * rb[j * h + t];
    double fro = 0;
    for (int64_t i = 0; i < h * h; i++)
        fro += c[i] * c[i];
    /* C^T C = Y S^2 Y^T; C = X S Y^T with x_i = C y_i / s_i */
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < h; j++)
            for (int64_t t = 0; t < h; t++)
                g[i * h + j] += c[t * h + i] * c[t * h + j];
    lowrank_jacobi_eig(g, h, s2, y);
    memset(As, 0, (size_t)(r * m) * sizeof *As);
    memset(Bs, 0, (size_t)(r * n) * sizeof *Bs);
    char *used = kd_calloc((size_t)h, 1);
    double *xv = kd_malloc((size_t)h * 8);
    for (int64_t k = 0; k < r && k < h; k++) {
        int64_t best = -1;
        for (int64_t i = 0; i < h; i++)
            if (!used[i] && (best < 0 || s2[i] > s2[best]))
                best = i;
        used[best] = 1;
        double s = sqrt(fmax(s2[best], 0.0));
        if (s <= 1e-12 * sqrt(fro))
            break; /* the rest of M is zero: leave the remaining rows 0 */
        for (int64_t i = 0; i < h; i++) {
            xv[i] = 0;
            for (int64_t t = 0; t < h; t++)
                xv[i] += c[i * h + t] * y[t * h + best];
            xv[i] /= s;
        }
        double rs = sqrt(s);
        /* As row k = sqrt(s) (qa^T x)^T, Bs row k = sqrt(s) (qb^T y)^T */
        for (int64_t i = 0; i < h; i++) {
            for (int64_t t = 0; t < m; t++)
                As[k * m + t] += rs * xv[i] * qa[i * m + t];
            for (int64_t t = 0; t < n; t++)
                Bs[k * n + t] += rs * y[i * h + best] * qb[i * n + t];
        }
    }
    free(used), free(xv);
    free(qa), free(qb), free(ra), free(rb), free(c), free(g), free(y), free(s2);
    return sqrt(fro);
}
