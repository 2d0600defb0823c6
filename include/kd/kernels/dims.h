/* dims.h: dimension letters and calling conventions shared by all kernels
 * (kernels layer: knows nothing of models, MPI or HDF5).
 *
 * Letters used in shape comments:
 *   B   batch size (sequences)          T   sequence length (tokens)
 *   C   channels = hidden size          NH  attention heads of a layer
 *   HS  head size (C / original heads)  F   FFN (intermediate) width
 *   V   vocabulary size                 L   number of layers
 *   K   classes (labels)                P   predicted positions per sequence
 *   BT  B*T rows of a token-major matrix
 *
 * Conventions (see ../shared/STYLE.md principle 2):
 *   op_forward(out, caches..., inp, params..., dims...)
 *   op_backward(dinp, dparams..., dout, inp/caches..., params..., dims...)
 * Outputs first, dimensions last; all tensors are dense row-major fp32.
 * Backward ACCUMULATES (+=) into every gradient it writes; the caller zeroes
 * gradients once per step. Forward keeps what backward needs in caches
 * (mean/rstd for layernorm, probabilities for attention, pre-activation for
 * GELU). Dimensions are int64_t.
 */
#ifndef KD_KERNELS_DIMS_H
#define KD_KERNELS_DIMS_H

#include <stdint.h>

#endif
