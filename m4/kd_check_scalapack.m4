# KD_CHECK_SCALAPACK: ScaLAPACK built against the same MPI (Open MPI flavour).
AC_DEFUN([KD_CHECK_SCALAPACK], [
  KD_REQUIRE_PKG([SCALAPACK], [scalapack-openmpi], [libscalapack-openmpi-dev],
                 [ScaLAPACK (Open MPI flavour)])
  kd_save_LIBS=$LIBS; LIBS="$SCALAPACK_LIBS $LIBS"
  AC_CHECK_FUNC([pdsyevd_], [],
    [AC_MSG_ERROR([ScaLAPACK found but pdsyevd_ does not link.
    On Debian/Ubuntu: apt-get install libscalapack-openmpi-dev])])
  LIBS=$kd_save_LIBS
])
