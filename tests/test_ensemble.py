"""The ensemble row's selection: members and weights from the validation split alone."""

import numpy as np

from fmnist.evaluation import comparison, ensemble

Y = np.array([0, 1, 0, 1, 0, 1])


def onehot(labels, confidence):
    """Probabilities over the 10 classes: ``confidence`` on each given label (0 or 1), the rest on
    the other of classes 0 and 1."""
    probs = np.zeros((len(labels), 10), dtype=np.float32)
    probs[:, :2] = 1 - confidence
    probs[np.arange(len(labels)), labels] = confidence
    return probs


def test_a_family_that_only_adds_errors_is_left_out():
    val = {"good": onehot(Y, 0.9), "bad": onehot(1 - Y, 0.6)}
    assert ensemble.select(val, Y) == {"good": 1}


def test_two_families_wrong_on_different_images_are_averaged_when_that_beats_each():
    # a is right on the first four, b on the last four; each is unsure where it is wrong, so the
    # average is right everywhere (6/6 against 4/6).
    a = onehot(np.array([0, 1, 0, 1, 1, 0]), 0.9)
    a[4:, :2] = [[0.45, 0.55], [0.55, 0.45]]
    b = onehot(np.array([1, 0, 0, 1, 0, 1]), 0.9)
    b[:2, :2] = [[0.45, 0.55], [0.55, 0.45]]
    members = ensemble.select({"a": a, "b": b}, Y)
    assert members == {"a": 1, "b": 1}
    assert np.mean(ensemble.combine({"a": a, "b": b}, members).argmax(axis=1) == Y) == 1.0


def test_a_family_can_weigh_more_than_another_by_being_chosen_again():
    # b alone is right on 5 of 6; a is wrong on those 5, surer than b, and sure of the sixth:
    # 1 a + 1 b is right on 1, 1 a + 2 b on all 6, so b must come twice.
    b = onehot(np.array([0, 1, 0, 1, 0, 0]), 0.7)
    a = onehot(np.array([1, 0, 1, 0, 1, 1]), 0.8)
    a[5, :2] = [0.0, 1.0]
    members = ensemble.select({"a": a, "b": b}, Y)
    assert members == {"a": 1, "b": 2}
    assert np.mean(ensemble.combine({"a": a, "b": b}, members).argmax(axis=1) == Y) == 1.0


def test_equal_families_tie_to_the_first_in_params_order_and_one_copy():
    same = onehot(Y, 0.8)
    assert ensemble.select({"first": same, "second": same.copy()}, Y) == {"first": 1}


def test_the_test_split_changes_the_ensembles_score_and_never_its_members():
    rows = [
        {"family": f, "forward_passes": passes, "params": 10, "inference_flops_per_image": 100 * passes}
        for f, passes in (("a", 1), ("b", 10))
    ]
    val = {"a": onehot(Y, 0.9), "b": onehot(Y, 0.8)}
    y_test = np.array([1, 1, 0, 0])
    right = {
        "a": {"val": val["a"], "test": onehot(y_test, 0.9)},
        "b": {"val": val["b"], "test": onehot(1 - y_test, 0.8)},
    }
    wrong = {
        "a": {"val": val["a"], "test": onehot(1 - y_test, 0.9)},
        "b": {"val": val["b"], "test": onehot(y_test, 0.8)},
    }
    first, second = comparison.ensemble_row(rows, right, Y, y_test), comparison.ensemble_row(rows, wrong, Y, y_test)
    assert first["members"] == second["members"] == {"a": 1}
    assert (first["test_accuracy"], second["test_accuracy"]) == (1.0, 0.0)
    assert first["val_accuracy"] == 1.0
    assert (first["forward_passes"], first["inference_flops_per_image"], first["params"]) == (1, 100, 10)
