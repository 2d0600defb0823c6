# mpi tests
