"""The metric functions against cases worked out by hand, and against Keras' own metrics."""

import numpy as np
import pytest

from fmnist.evaluation import metrics
from fmnist.evaluation.views import ALL_VIEWS, VIEWS

# True classes as rows: class 0 is right once and taken for 1 once; class 1 is right once;
# class 2 is right twice and taken for 0 once.
Y_TRUE = np.array([0, 0, 1, 2, 2, 2])
Y_PRED = np.array([0, 1, 1, 2, 0, 2])
CM = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED, 3), CM)


def test_classification_report_from_a_known_confusion_matrix():
    report = metrics.classification_report(CM, ["a", "b", "c"])
    rows = {row["class"]: row for row in report["per_class"]}
    # a: 1 of 2 predicted a are a, 1 of 2 true a found.  b: 1 of 2, 1 of 1.  c: 2 of 2, 2 of 3.
    assert rows["a"] == pytest.approx({"class": "a", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert rows["b"] == pytest.approx({"class": "b", "precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert rows["c"] == pytest.approx({"class": "c", "precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert report["macro"] == pytest.approx(
        {"precision": 2 / 3, "recall": (0.5 + 1 + 2 / 3) / 3, "f1": (0.5 + 2 / 3 + 0.8) / 3}
    )


def test_a_class_never_predicted_scores_zero_not_nan():
    cm = np.array([[2, 0], [1, 0]])  # class 1 is never predicted
    report = metrics.classification_report(cm, ["a", "b"])
    assert report["per_class"][1] == {"class": "b", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report["macro"]["f1"] == pytest.approx((0.8 + 0.0) / 2)


def test_top_k_accuracy_counts_the_true_class_within_the_k_most_probable():
    probs = np.array(
        [
            [0.6, 0.3, 0.1],  # true 0: rank 1
            [0.6, 0.3, 0.1],  # true 1: rank 2
            [0.6, 0.3, 0.1],  # true 2: rank 3
            [0.4, 0.4, 0.2],  # true 1, tied for first: a tie does not push it out
        ]
    )
    y = np.array([0, 1, 2, 1])
    assert metrics.top_k_accuracy(probs, y, 1) == 0.5
    assert metrics.top_k_accuracy(probs, y, 2) == 0.75
    assert metrics.top_k_accuracy(probs, y, 3) == 1.0


def test_cross_entropy_is_the_mean_negative_log_of_the_true_class_clipped():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    y = np.array([0, 0, 1])
    expected = -(np.log(0.5) + np.log(0.9) + np.log(metrics.EPSILON)) / 3
    assert metrics.cross_entropy(probs, y) == pytest.approx(expected)


def test_confident_mistakes_are_the_wrong_predictions_most_confident_first():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.95, 0.05], [0.6, 0.4]])
    y = np.array([0, 0, 0, 1, 1])  # wrong: 1 (0.8), 2 (0.7), 3 (0.95), 4 (0.6)
    np.testing.assert_array_equal(metrics.confident_mistakes(probs, y, 3), [3, 1, 2])
    assert len(metrics.confident_mistakes(probs[:1], y[:1], 5)) == 0


def test_summarize_agrees_with_keras_metrics():
    import keras

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 10)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 10, size=500)
    onehot = keras.utils.to_categorical(y, 10)
    summary = metrics.summarize(probs, y, [str(i) for i in range(10)])

    assert summary["test"]["accuracy"] == pytest.approx(
        float(keras.metrics.categorical_accuracy(onehot, probs).numpy().mean())
    )
    assert summary["test"]["top2_accuracy"] == pytest.approx(
        float(keras.metrics.top_k_categorical_accuracy(onehot, probs, k=2).numpy().mean())
    )
    assert summary["test"]["loss"] == pytest.approx(
        float(keras.losses.CategoricalCrossentropy()(onehot, probs).numpy()), rel=1e-5
    )
    assert np.sum(summary["confusion_matrix"]["counts"]) == 500


def test_a_view_mirrors_then_moves_by_one_pixel_with_zeros_shifted_in():
    from fmnist.evaluation.inference import view

    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    assert view(x, 0, 0, False).numpy()[0, ..., 0].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert view(x, 0, 0, True).numpy()[0, ..., 0].tolist() == [[3, 2, 1], [6, 5, 4], [9, 8, 7]]
    assert view(x, 1, 0, False).numpy()[0, ..., 0].tolist() == [[0, 0, 0], [1, 2, 3], [4, 5, 6]]
    assert view(x, 0, -1, True).numpy()[0, ..., 0].tolist() == [[2, 1, 0], [5, 4, 0], [8, 7, 0]]


def test_the_named_views_cost_one_two_and_ten_distinct_passes_each_including_the_image_as_it_is():
    assert {name: len(views) for name, views in VIEWS.items()} == {"none": 1, "flip": 2, "flip_shifts": 10}
    assert set().union(*VIEWS.values()) == set(VIEWS[ALL_VIEWS])  # evaluate scores every choice from these
    for views in VIEWS.values():
        assert len(set(views)) == len(views)
        assert views[0] == (0, 0, False)


def served_probabilities(tmp_path, model, images, norm, views):
    import tensorflow as tf

    from fmnist.serving.export import export

    export(model, norm, views, tmp_path)
    served = tf.saved_model.load(str(tmp_path / "1")).signatures["serving_default"]
    return served(images=tf.constant(images))["probabilities"].numpy()


@pytest.fixture(scope="module")
def small_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )


IMAGES = np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8)
NORM = {"method": "standardize", "mean": 0.29, "std": 0.35}


@pytest.mark.parametrize("one", VIEWS[ALL_VIEWS])
def test_the_exported_savedmodel_sees_each_view_as_evaluate_does(tmp_path, small_model, one):
    from fmnist.data.splits import normalize
    from fmnist.evaluation.inference import view_probabilities

    probs = served_probabilities(tmp_path, small_model, IMAGES, NORM, (one,))
    expected = view_probabilities(small_model, normalize(IMAGES, NORM), 8, (one,))[one]
    assert np.abs(probs - expected).max() < 1e-6


@pytest.mark.parametrize("name", list(VIEWS))
def test_the_exported_savedmodel_averages_the_views_evaluate_uses_on_raw_images(tmp_path, small_model, name):
    from fmnist.data.splits import normalize
    from fmnist.evaluation.inference import predict

    probs = served_probabilities(tmp_path, small_model, IMAGES, NORM, VIEWS[name])
    x = normalize(IMAGES, NORM)
    assert np.abs(probs - predict(small_model, x, 8, name)).max() < 1e-6
    if name != "none":  # the views change the answer, so the comparison above can tell them apart
        assert np.abs(probs - predict(small_model, x, 8, "none")).max() > 1e-3
