# KD_REQUIRE_PKG(VAR, PKG-CONFIG-MODULE, DEBIAN-PACKAGE, WHAT)
# Finds a dependency through pkg-config and stops configure with a message that
# names the Debian package to install when it is missing.
AC_DEFUN([KD_REQUIRE_PKG], [
  PKG_CHECK_MODULES([$1], [$2], [],
    [AC_MSG_ERROR([$4 not found (pkg-config module '$2').
    On Debian/Ubuntu: apt-get install $3
    Or set $1_CFLAGS and $1_LIBS by hand.])])
])
