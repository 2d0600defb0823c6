# teacher store tests
