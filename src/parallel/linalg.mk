# parallel/linalg.mk: BLACS grids and the ScaLAPACK drivers (PCA by
# PDSYEVD, least squares by PDGELS) over the student ranks.
src_libkd_a_SOURCES += src/parallel/scalapack_grid.c src/parallel/scalapack_pca.c \
	src/parallel/scalapack_lstsq.c
noinst_HEADERS += include/kd/parallel/scalapack.h include/kd/parallel/scalapack_lib.h
