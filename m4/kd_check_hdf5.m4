# KD_CHECK_HDF5_PARALLEL: HDF5 built with MPI-IO (H5_HAVE_PARALLEL); the
# teacher store is written by all ranks into one file.
AC_DEFUN([KD_CHECK_HDF5_PARALLEL], [
  KD_REQUIRE_PKG([HDF5], [hdf5-openmpi], [libhdf5-openmpi-dev],
                 [parallel HDF5 (Open MPI flavour)])
  kd_save_CPPFLAGS=$CPPFLAGS; CPPFLAGS="$HDF5_CFLAGS $CPPFLAGS"
  AC_MSG_CHECKING([whether HDF5 is built for parallel I/O])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <hdf5.h>
#ifndef H5_HAVE_PARALLEL
#error serial HDF5
#endif]], [[]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([HDF5 found but without parallel I/O (H5_HAVE_PARALLEL).
    On Debian/Ubuntu: apt-get install libhdf5-openmpi-dev])])
  CPPFLAGS=$kd_save_CPPFLAGS
  AC_PATH_PROG([H5DUMP], [h5dump])
])
