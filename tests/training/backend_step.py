"""Child process of the TF/JAX equivalence test: one loss-and-gradients step on the Keras backend it runs under.

    KERAS_BACKEND=jax python -m tests.training.backend_step WORK TERMS...   (TERMS: plain, mouth, leak, shape)

Reads WORK/weights.npz (the tiny generator's and expert's weights by variable path) and WORK/batch.npz,
writes WORK/<backend>_<terms>.npz with the loss and the gradient of every trainable variable. Under JAX,
TensorFlow is made unimportable first: the step must not need it.
"""

import os
import sys



if os.environ.get("KERAS_BACKEND") == "jax":
    from tests.no_tensorflow import block

    block()

import numpy as np  # noqa: E402


def main(work, terms):
    import keras

    from keras_speech2vid.models import build_generator, build_mouth_expert
    from keras_speech2vid.training.config import TrainConfig
    from keras_speech2vid.training.losses import GeneratorLoss

    weights = dict(np.load(os.path.join(work, "weights.npz")))
    batch = dict(np.load(os.path.join(work, "batch.npz")))
    model, expert = build_generator("tiny"), build_mouth_expert(109, widths=(4, 4, 4, 4), hidden=8)
    for m, prefix in ((model, "g/"), (expert, "e/")):
        for v in m.weights:
            v.assign(weights[prefix + v.path])
    cfg = {"plain": TrainConfig(), "mouth": TrainConfig(mouth_weight=4.0),
           "leak": TrainConfig(audio_leak_weight=0.5),
           "shape": TrainConfig(shape_expert="x.keras", shape_weight=0.3, shape_terms="aperture")}[terms]
    loss = GeneratorLoss(cfg, 109, expert if terms == "shape" else None)
    inputs = {"mfcc": batch["mfcc"], "identity": batch["identity"]}
    backend = keras.backend.backend()
    if backend == "jax":
        from keras_speech2vid.training.jax_step import loss_and_grads

        grads_of = loss_and_grads(model, loss)
        (value, _), grads = grads_of([v.value for v in model.trainable_variables],
                                     [v.value for v in model.non_trainable_variables], inputs, batch["target"])
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(lambda x, t: model(x, training=t)["frame"], inputs, batch["target"], True))
        grads = tape.gradient(value, model.trainable_variables)
    if backend == "jax":
        assert "tensorflow" not in sys.modules
    out = {"loss": np.asarray(value)}
    out.update({v.path: np.asarray(g) for v, g in zip(model.trainable_variables, grads)})
    np.savez(os.path.join(work, f"{backend}_{terms}.npz"), **out)


if __name__ == "__main__":
    for terms in sys.argv[2:]:
        main(sys.argv[1], terms)
