# jobs shipped with kd_hpc
