"""The generator's training step on the JAX backend: stateless, jit-compiled, no TensorFlow.

The GPU machine has JAX but no TensorFlow, so this step imports none: the loss is `losses.GeneratorLoss`
(the same `keras.ops` code as the TF loop), the gradients come from `jax.value_and_grad` over
`model.stateless_call`, and `optimizer.stateless_apply` updates the weights. State is the tuple
(trainable values, non-trainable values, optimizer values); `state_of` reads it from the Keras objects
and `assign_state` writes it back (before saving weights).

Use (with ``KERAS_BACKEND=jax``)::

    loss = GeneratorLoss(cfg, 109, expert)
    step = make_train_step(model, optimizer, loss)
    state = state_of(model, optimizer)
    value, state = step(state, inputs, target)     # inputs {"mfcc", "identity"}, NumPy or JAX arrays
"""

from __future__ import annotations


def _frame(out):
    return out["frame"] if isinstance(out, dict) else out


def loss_and_grads(model, loss):
    """f(trainable, non_trainable, inputs, target) → ((mean loss, new non_trainable), grads wrt trainable)."""
    import jax
    from keras import ops

    def compute(trainable, non_trainable, inputs, target):
        updated = []

        def forward(x, training):
            out, new = model.stateless_call(trainable, non_trainable, x, training=training)
            updated.append(new)
            return ops.cast(_frame(out), "float32")

        value = ops.mean(loss(forward, inputs, target, True))
        return value, updated[0]  # the moving statistics of the main forward pass

    return jax.value_and_grad(compute, has_aux=True)


def make_train_step(model, optimizer, loss, jit: bool = True):
    """step(state, inputs, target) → (mean loss, new state); see the module doc."""
    import jax

    grads_of = loss_and_grads(model, loss)

    def step(state, inputs, target):
        trainable, non_trainable, opt = state
        (value, non_trainable), grads = grads_of(trainable, non_trainable, inputs, target)
        trainable, opt = optimizer.stateless_apply(opt, grads, trainable)
        return value, (trainable, non_trainable, opt)

    return jax.jit(step) if jit else step


def make_eval_step(model, loss, jit: bool = True):
    """evaluate(state, inputs, target) → the sum of the per-example validation losses."""
    import jax
    from keras import ops

    def evaluate(state, inputs, target):
        trainable, non_trainable, _ = state

        def forward(x, training):
            return ops.cast(_frame(model.stateless_call(trainable, non_trainable, x, training=training)[0]), "float32")

        return ops.sum(loss(forward, inputs, target, False))

    return jax.jit(evaluate) if jit else evaluate


def state_of(model, optimizer):
    """The step's state from a built model and optimizer (the optimizer is built here when needed)."""
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    return ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
            [v.value for v in optimizer.variables])


def assign_state(model, optimizer, state) -> None:
    """Write a step's state back into the Keras model and optimizer."""
    trainable, non_trainable, opt = state
    for variables, values in ((model.trainable_variables, trainable), (model.non_trainable_variables, non_trainable),
                              (optimizer.variables, opt)):
        for v, value in zip(variables, values):
            v.assign(value)
