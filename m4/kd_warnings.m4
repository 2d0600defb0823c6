# KD_OPT_FLAGS: warnings for our own code, and -march=native unless
# --disable-native (build on the nodes that run the job, or disable it for a
# heterogeneous cluster).
AC_DEFUN([KD_OPT_FLAGS], [
  AC_ARG_ENABLE([native],
    [AS_HELP_STRING([--disable-native], [do not compile with -march=native])],
    [], [enable_native=yes])
  KD_CFLAGS="-Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes"
  # -std=c11 turns off a*b+c contraction in GCC; the kernels want FMAs
  kd_save_CFLAGS=$CFLAGS; CFLAGS="$CFLAGS -ffp-contract=fast"
  AC_MSG_CHECKING([whether $CC accepts -ffp-contract=fast])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes]); KD_CFLAGS="$KD_CFLAGS -ffp-contract=fast"],
    [AC_MSG_RESULT([no])])
  CFLAGS=$kd_save_CFLAGS
  AS_IF([test "x$enable_native" = xyes], [
    kd_save_CFLAGS=$CFLAGS; CFLAGS="$CFLAGS -march=native"
    AC_MSG_CHECKING([whether $CC accepts -march=native])
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AC_MSG_RESULT([yes]); KD_CFLAGS="$KD_CFLAGS -march=native"],
      [AC_MSG_RESULT([no])])
    CFLAGS=$kd_save_CFLAGS])
  AC_SUBST([KD_CFLAGS])
])
