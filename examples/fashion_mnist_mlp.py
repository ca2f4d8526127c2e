"""The He-initialised MLP from our users' notes (Flatten → Dense 128 → Dense 128 → softmax, He normal),
trained on Fashion-MNIST.

Run: python examples/fashion_mnist_mlp.py [--epochs N]   (about 0.88 test accuracy after 10 epochs, as Keras)
Data: `apt-get install dataset-fashion-mnist`, or set GLASSNET_DATA (see README).
"""
import argparse
import time

import glassnet as keras
from glassnet.layers import Dense, Flatten
from glassnet.models import Sequential


def build_model():
    he_normal = keras.initializers.he_normal(seed=None)
    model = Sequential()
    model.add(Flatten(input_shape=(28, 28)))
    model.add(Dense(128, activation="relu", kernel_initializer=he_normal))
    model.add(Dense(128, activation="relu", kernel_initializer=he_normal))
    model.add(Dense(10, activation="softmax"))
    return model


def main(epochs=10, seed=0, verbose=2):
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    x_train = x_train.astype("float32") / 255.0
    x_test = x_test.astype("float32") / 255.0
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=verbose,
              validation_data=(x_test[:1000], y_test[:1000]))
    elapsed = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Fashion-MNIST test accuracy: {accuracy:.4f} (loss {loss:.4f}); "
          f"training {elapsed:.1f}s for {epochs} epochs")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, seed=args.seed)
