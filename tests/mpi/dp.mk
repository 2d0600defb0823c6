# mpi/dp.mk: files are added as the work lands
