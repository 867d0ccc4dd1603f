from keras_speech2vid.data.prepare import PrepareConfig

STAGE_I = PrepareConfig(val_fraction=0.0, sync=False)  # stage (i) only, as the `prepared` fixture
