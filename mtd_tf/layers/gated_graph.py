"""Gated graph network over batched session graphs: SR-GNN's node update (eq. 1-5)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mtd_tf")
class GatedGraph(keras.layers.Layer):
    """Updates every node of a batch of small directed graphs with a GRU over its messages.

    Each of `num_steps` steps, with the same weights (nodes v as rows of H, `d` wide):

        a_in  = A_in  (H W_in  + b_in)  + b_iah                  (eq. 1, incoming edges)
        a_out = A_out (H W_out + b_out) + b_oah                  (eq. 1, outgoing edges)
        a = [a_in ; a_out]                                        [N, 2d]
        r = sigmoid(a W_ir + b_ir + H W_hr + b_hr)               (eq. 3)
        z = sigmoid(a W_iz + b_iz + H W_hz + b_hz)               (eq. 2)
        n = tanh(a W_in' + b_in' + r * (H W_hn + b_hn))          (eq. 4, reset after)
        H <- (1 - z) * n + z * H                                  (eq. 5)

    This is `GNN.GNNCell` of the authors' PyTorch code (CRIPAC-DIG/SR-GNN,
    `pytorch_code/model.py`): the edge transforms with biases, the biases b_iah and b_oah
    added to every node, and `torch.nn.GRUCell`'s gates. Two conventions differ from the
    paper's text and follow the code: eq. 5 there reads (1 - z) H + z n, the same family
    with z relabelled 1 - z; and with `reset_after=False` the candidate is eq. 4 as printed
    (and as the authors' TensorFlow code's `GRUCell` computes it),
    n = tanh(a W_in' + b_in' + (r * H) W_hn + b_hn).

    Every weight starts uniform in [-1/sqrt(d), 1/sqrt(d)], as the code's
    `reset_parameters` (and PyTorch's own GRU default) set them.

    Args:
      num_steps: propagation steps (the code's `step`).
      reset_after: apply the reset gate after the hidden transform (PyTorch's GRU, the
        code's) or before it (eq. 4).
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      inputs: `(hidden, adjacency_in, adjacency_out)`: node states float `[batch, N, d]`;
        the normalised in- and out-connection matrices float `[batch, N, N]`, row i holding
        the weights of node i's predecessors (in) or successors (out), zero rows and columns
        for padding nodes (`mtd_tf.layers.session_graph`).
      training: unused (no dropout); accepted for a uniform call signature.

    Returns:
      Node states `[batch, N, d]`. A node without edges still moves (its messages are the
      biases b_iah, b_oah), but never reaches another node.

    Reference: Wu et al., AAAI 2019, eq. 1-5; Li et al., ICLR 2016 (gated graph networks).
    """

    def __init__(self, num_steps=1, reset_after=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        if not isinstance(reset_after, bool):
            raise ValueError(f"reset_after must be a bool, got {reset_after!r}")
        self.num_steps = num_steps
        self.reset_after = reset_after

    def build(self, input_shape):
        hidden_shape = input_shape[0]
        dim = hidden_shape[-1]
        if dim is None:
            raise ValueError(f"the last hidden dimension must be known, got {hidden_shape}")
        bound = dim ** -0.5
        initializer = keras.initializers.RandomUniform(-bound, bound)

        def weight(name, shape):
            return self.add_weight(name=name, shape=shape, initializer=initializer)

        self.in_kernel, self.in_bias = weight("in_kernel", (dim, dim)), weight("in_bias", (dim,))
        self.out_kernel = weight("out_kernel", (dim, dim))
        self.out_bias = weight("out_bias", (dim,))
        self.in_message_bias = weight("in_message_bias", (dim,))  # b_iah
        self.out_message_bias = weight("out_message_bias", (dim,))  # b_oah
        # Gate columns: [reset | update | candidate], d each.
        self.message_kernel = weight("message_kernel", (2 * dim, 3 * dim))
        self.message_bias = weight("message_bias", (3 * dim,))
        self.hidden_kernel = weight("hidden_kernel", (dim, 3 * dim))
        self.hidden_bias = weight("hidden_bias", (3 * dim,))

    def call(self, inputs, training=None):
        hidden, adjacency_in, adjacency_out = inputs
        adjacency_in = tf.cast(adjacency_in, hidden.dtype)
        adjacency_out = tf.cast(adjacency_out, hidden.dtype)
        dim = self.hidden_kernel.shape[0]
        for _ in range(self.num_steps):
            incoming = tf.matmul(adjacency_in, tf.matmul(hidden, self.in_kernel) + self.in_bias)
            outgoing = tf.matmul(adjacency_out,
                                 tf.matmul(hidden, self.out_kernel) + self.out_bias)
            messages = tf.concat([incoming + self.in_message_bias,
                                  outgoing + self.out_message_bias], axis=-1)  # [B, N, 2d]
            from_messages = tf.matmul(messages, self.message_kernel) + self.message_bias
            message_reset, message_update, message_candidate = tf.split(from_messages, 3, -1)
            from_hidden = tf.matmul(hidden, self.hidden_kernel) + self.hidden_bias  # [B, N, 3d]
            hidden_reset, hidden_update, hidden_candidate = tf.split(from_hidden, 3, -1)
            reset = tf.sigmoid(message_reset + hidden_reset)
            update = tf.sigmoid(message_update + hidden_update)
            if self.reset_after:
                candidate = tf.tanh(message_candidate + reset * hidden_candidate)
            else:
                candidate = tf.tanh(
                    message_candidate
                    + tf.matmul(reset * hidden, self.hidden_kernel[:, 2 * dim:])
                    + self.hidden_bias[2 * dim:])
            hidden = (1 - update) * candidate + update * hidden
        return hidden

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(num_steps=self.num_steps, reset_after=self.reset_after)
        return config
