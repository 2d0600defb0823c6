# mpi/linalg.mk: files are added as the work lands
