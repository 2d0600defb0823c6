# KD_CHECK_MPI: pick an MPI C compiler wrapper as CC (before AC_PROG_CC) and
# make sure it can build and link an MPI program.
AC_DEFUN([KD_CHECK_MPI_CC], [
  AC_ARG_VAR([MPICC], [MPI C compiler wrapper (default: mpicc)])
  AS_IF([test -z "$MPICC"], [AC_PATH_PROGS([MPICC], [mpicc])])
  AS_IF([test -z "$MPICC"],
    [AC_MSG_ERROR([no MPI C compiler (mpicc) found.
    On Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev])])
  CC="$MPICC"
])
AC_DEFUN([KD_CHECK_MPI_LINKS], [
  AC_MSG_CHECKING([whether $CC links MPI programs])
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>]],
                                  [[MPI_Init(0, 0); MPI_Finalize();]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([$CC cannot link MPI programs.
    On Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev])])
  AC_ARG_VAR([MPIEXEC], [MPI launcher used by make check (default: mpiexec or mpirun)])
  AS_IF([test -z "$MPIEXEC"], [AC_PATH_PROGS([MPIEXEC], [mpiexec mpirun])])
  AS_IF([test -z "$MPIEXEC"],
    [AC_MSG_WARN([no MPI launcher found: multi-rank tests will be skipped])])
])
