"""The NumPy pieces the models' references share: the weights read by path, the
element-wise functions and the self-attention block, written out with nothing from the
code under test."""

import numpy as np


def model_weights(model):
    """{path without the model's name: float64 array} for every float weight of `model` (a
    bank of item ids or a write counter is not a weight the equations read)."""
    return {w.path.split("/", 1)[1]: np.asarray(w.numpy(), np.float64)
            for w in model.weights if w.dtype.startswith("float")}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(logits):
    """Softmax over the last axis (-inf entries get weight 0)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def layer_norm(x, gamma, beta, epsilon=1e-8):
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def attention_block(x, weights, prefix, num_heads, causal=True):
    """`SelfAttentionBlock` (MTD's eq. 1-2) on the real rows x [I, d] of one session, its
    weights under `prefix/` in `weights`; `causal`: key j visible to query i iff j <= i.

    Returns:
      (out [I, d], the attention weights [H, I, I]).
    """
    length, dim = x.shape
    head_dim = dim // num_heads
    query, key, value = (x @ weights[f"{prefix}/{name}/kernel"]
                         for name in ("query", "key", "value"))
    visible = np.tril(np.ones((length, length), bool)) if causal else np.ones(
        (length, length), bool)
    heads, contexts = [], []
    for head in range(num_heads):
        columns = slice(head * head_dim, (head + 1) * head_dim)
        logits = query[:, columns] @ key[:, columns].T / np.sqrt(head_dim)
        attention = softmax(np.where(visible, logits, -np.inf))
        heads.append(attention)
        contexts.append(attention @ value[:, columns])
    context = np.concatenate(contexts, axis=1)
    if num_heads > 1:
        context = context @ weights[f"{prefix}/attention_output/kernel"]
    hidden = layer_norm(x + context, weights[f"{prefix}/attention_norm/gamma"],
                        weights[f"{prefix}/attention_norm/beta"])
    inner = np.maximum(hidden @ weights[f"{prefix}/ffn_inner/kernel"]
                       + weights[f"{prefix}/ffn_inner/bias"], 0.0)
    outer = inner @ weights[f"{prefix}/ffn_outer/kernel"] + weights[f"{prefix}/ffn_outer/bias"]
    out = layer_norm(hidden + outer, weights[f"{prefix}/ffn_norm/gamma"],
                     weights[f"{prefix}/ffn_norm/beta"])
    return out, np.stack(heads)
