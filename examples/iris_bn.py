"""The batch-normalised MLP from our users' notes, trained on the embedded Iris data.

Run: python examples/iris_bn.py   (prints the test accuracy; ≥ 0.95 expected)
"""
import numpy as np

import glassnet as keras
from glassnet.layers import BatchNormalization, Dense
from glassnet.models import Sequential


def build_model():
    return Sequential([
        Dense(64, input_shape=(4,), activation="relu"),
        BatchNormalization(),
        Dense(128, activation="relu"),
        BatchNormalization(),
        Dense(128, activation="relu"),
        BatchNormalization(),
        Dense(64, activation="relu"),
        BatchNormalization(),
        Dense(64, activation="relu"),
        BatchNormalization(),
        Dense(3, activation="softmax"),
    ])


def main(seed=0, epochs=60, verbose=2):
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = keras.datasets.iris.load_data()
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    model = build_model()
    optimizer = keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()
    model.fit(x_train, y_train, batch_size=16, epochs=epochs, verbose=verbose,
              validation_split=0.1)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Iris test accuracy: {accuracy:.3f} (loss {loss:.4f})")
    one = model.predict(x_test[:1], verbose=0)
    batch = model.predict(x_test, verbose=0)[:1]
    print("predict(one sample) == predict(batch)[0]:", bool(np.allclose(one, batch, atol=1e-6)))
    return accuracy


if __name__ == "__main__":
    main()
