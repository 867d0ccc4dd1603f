"""Data: videos → TFRecord shards (`prepare`) → tf.data samples (`dataset`)."""
