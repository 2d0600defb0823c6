/* lowrank.h: small dense helpers of the initialisers (init layer, serial,
 * double precision): a symmetric eigen-solver and the best rank-r
 * factorisation of a product A^T B, used to fit a teacher head into a
 * narrower student head (student_pca.c). Sizes are a head's (tens to a few
 * hundred), so plain cyclic Jacobi is fast enough and needs no LAPACK. */
#ifndef KD_INIT_LOWRANK_H
#define KD_INIT_LOWRANK_H

#include <stdint.h>

/* Cyclic Jacobi on the symmetric (n,n) row-major a (destroyed): eigenvalues
 * w (n, unordered), eigenvectors as the columns of v (n,n). */
void lowrank_jacobi_eig(double *a, int64_t n, double *w, double *v);

/* Best rank-r approximation (Frobenius, Eckart-Young) of M = A^T B, with
 * A (h,m) and B (h,n) row-major, returned as factors As (r,m), Bs (r,n),
 * As^T Bs = M_r, the singular values split evenly (sqrt on each side).
 * r may exceed rank(M) or h: the extra rows are 0. Returns ||M||_F.
 * Method: thin QR of A^T and B^T (modified Gram-Schmidt), SVD of the small
 * (h,h) R_a R_b^T through the eigenpairs of its Gram matrix. */
double lowrank_factor(double *As, double *Bs, const double *A, const double *B, int64_t h,
                      int64_t m, int64_t n, int64_t r);

#endif
