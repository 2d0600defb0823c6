# KD_CHECK_CBLAS: CBLAS, OpenBLAS by default. --with-blas=openblas|blis|PKGNAME
# picks a pkg-config module; --with-blas="-L... -lfoo" takes raw linker flags.
AC_DEFUN([KD_CHECK_CBLAS], [
  AC_ARG_WITH([blas],
    [AS_HELP_STRING([--with-blas=NAME|LIBS],
      [CBLAS provider: a pkg-config module (default: openblas) or linker flags])],
    [], [with_blas=openblas])
  AS_CASE([$with_blas],
    [-*], [CBLAS_LIBS="$with_blas"],
    [KD_REQUIRE_PKG([CBLAS], [$with_blas], [libopenblas-dev],
                    [CBLAS provider '$with_blas'])])
  kd_save_LIBS=$LIBS; kd_save_CPPFLAGS=$CPPFLAGS
  LIBS="$CBLAS_LIBS $LIBS"; CPPFLAGS="$CBLAS_CFLAGS $CPPFLAGS"
  AC_MSG_CHECKING([for cblas_sgemm])
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <cblas.h>]],
      [[float a = 1, b = 1, c = 0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1,
                    1.0f, &a, 1, &b, 1, 0.0f, &c, 1);]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([cblas_sgemm not usable with '$CBLAS_CFLAGS $CBLAS_LIBS'.
    On Debian/Ubuntu: apt-get install libopenblas-dev])])
  LIBS=$kd_save_LIBS; CPPFLAGS=$kd_save_CPPFLAGS
])
