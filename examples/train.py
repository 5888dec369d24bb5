"""Logistic regression trained with gradient descent: the script version of the quickstart model.

Run it as a tracked run:

    guild-jupyter run train.py lr=1.0 epochs=100

The top-level literal assignments below (``lr``, ``epochs``, ``l2``) are its
flags: a run writes its values into them in the snapshot it runs. Printed
``key: value`` lines are recorded as scalars, and a printed ``step: N`` sets
the step of the lines after it. The script runs in the run directory, so
``model.json`` is saved there as an artifact of the run.
"""

import json

import numpy as np

lr = 0.5  # learning rate
epochs = 30  # full passes over the training set
l2 = 0.0  # L2 penalty on the weights

# The same synthetic data as in quickstart.ipynb: 20 features, 5 of them informative.
rng = np.random.default_rng(0)
true_w = np.zeros(20)
true_w[:5] = rng.normal(0.0, 3.0, 5)
X = rng.normal(size=(400, 20))
y = (rng.random(400) < 1.0 / (1.0 + np.exp(-X @ true_w))).astype(float)
X_train, y_train, X_val, y_val = X[:200], y[:200], X[200:], y[200:]


def predict(X, w, b):
    return 1.0 / (1.0 + np.exp(-(X @ w + b)))


def metrics(X, y, w, b):
    p = np.clip(predict(X, w, b), 1e-12, 1 - 1e-12)
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float(loss), float(np.mean((p > 0.5) == y))


w, b = np.zeros(X.shape[1]), 0.0
for epoch in range(1, epochs + 1):
    error = predict(X_train, w, b) - y_train
    w -= lr * (X_train.T @ error / len(y_train) + l2 * w)
    b -= lr * error.mean()
    if epoch % 20 == 0 or epoch == epochs:
        loss, acc = metrics(X_train, y_train, w, b)
        print(f"step: {epoch}")
        print(f"loss: {loss:.4f}")
        print(f"acc: {acc:.3f}")

val_loss, val_acc = metrics(X_val, y_val, w, b)
print(f"val_loss: {val_loss:.4f}")
print(f"val_acc: {val_acc:.3f}")

with open("model.json", "w") as f:
    json.dump({"w": w.tolist(), "b": b}, f)
