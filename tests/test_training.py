"""Every family and every knob, on tiny synthetic data."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from fmnist.all_params import shipped_params
from fmnist.config.params import family_config
from fmnist.config.schema import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, SCHEDULES
from fmnist.evaluation.inference import view
from fmnist.models import families
from fmnist.training import inputs, loop
from fmnist.utils import runtime
from fmnist.utils.errors import ParamsError
from tests.conftest import TINY, bfloat16_convolutions, class_patterns


def config(family: str = "mlp", **overrides) -> dict:
    params = shipped_params()
    params["families"][family] = TINY[family]
    return {**family_config(params, family), "epochs": 1, "batch_size": 32, **overrides}


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(0)

    def split(n):
        y = (np.arange(n) % 10).astype(np.uint8)
        return (class_patterns(y, rng) / 255.0).astype(np.float32)[..., None], y

    return {"train": split(160), "val": split(40), "test": split(40)}


def fit(family, cfg, splits, tmp_path):
    runtime.configure(cfg)
    model = families.build(family, cfg)
    summary = loop.train(model, cfg, splits, tmp_path / "live")
    return model, summary


def curve(tmp_path, metric: str) -> list[str]:
    """The rows of one dvclive curve of a run (``train/loss``, ``eval/loss``), header dropped."""
    return (tmp_path / f"live/plots/metrics/{metric}.tsv").read_text().splitlines()[1:]


# The conv families take seconds each: in make test, not make test-fast.
CONV_SLOW = [pytest.param(f, marks=pytest.mark.slow) if f in {"cnn", "alexnet"} else f for f in TINY]


@pytest.mark.parametrize("family", CONV_SLOW)
def test_every_family_builds_and_trains_one_epoch(family, splits, tmp_path):
    model, summary = fit(family, config(family), splits, tmp_path)
    assert model.output_shape == (None, 10)
    assert summary["epochs_run"] == 1
    assert summary["params"] == model.count_params()
    assert summary["train_images"] == len(splits["train"][0])
    metrics = json.loads((tmp_path / "live/metrics.json").read_text())
    assert set(metrics) >= {"train", "eval"}
    assert (tmp_path / "live/plots/metrics/eval/accuracy.tsv").exists()


def test_training_learns_the_synthetic_classes(splits, tmp_path):
    model, _ = fit("mlp", config(epochs=15, hidden=[32]), splits, tmp_path)
    x, y = splits["val"]
    assert (model.predict(x, verbose=0).argmax(1) == y).mean() > 0.8


# The cnn has every source of randomness (dropout, batch norm, shuffling, augmentation); airbench
# its own layers (a 2x2 stem, conv-pool-conv blocks).
@pytest.mark.parametrize("family", [pytest.param("cnn", marks=pytest.mark.slow), "airbench"])
def test_same_seed_same_weights_other_seed_other_weights(family, splits, tmp_path):
    cfg = config(family)
    first, _ = fit(family, cfg, splits, tmp_path / "a")
    second, _ = fit(family, cfg, splits, tmp_path / "b")
    third, _ = fit(family, {**cfg, "seed": 1}, splits, tmp_path / "c")
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first.get_weights(), third.get_weights(), strict=True))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_is_applied_to_every_hidden_layer(activation):
    model = families.build("mlp", config(activation=activation))
    used = [layer.activation for layer in model.layers if isinstance(layer, keras.layers.Activation)]
    assert used == [keras.activations.get(activation)] * 2  # swish is Keras' silu


def test_mlp_takes_one_activation_per_layer():
    model = families.build("mlp", config(hidden=[16, 8], activations=["relu", "sigmoid"]))
    used = [layer.activation for layer in model.layers if isinstance(layer, keras.layers.Activation)]
    assert used == [keras.activations.relu, keras.activations.sigmoid]
    with pytest.raises(ParamsError, match="activations has 1 entries but hidden has 2 layers"):
        families.build("mlp", config(hidden=[16, 8], activations=["relu"]))


@pytest.mark.parametrize("name", INITIALIZERS)
def test_initializer_is_used_by_every_kernel(name):
    expected = type(keras.initializers.get(name))
    model = families.build("cnn", config("cnn", initializer=name))
    kernels = [layer for layer in model.layers if hasattr(layer, "kernel_initializer")]
    assert kernels
    assert all(type(layer.kernel_initializer) is expected for layer in kernels)


def test_he_uniform_really_draws_kaiming_uniform():
    keras.utils.set_random_seed(0)
    model = families.build("mlp", config(hidden=[4000], initializer="he_uniform"))
    kernel = model.layers[2].kernel.numpy()  # Flatten, then the first Dense: 784 inputs
    limit = np.sqrt(6 / 784)
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.99 * limit
    assert kernel.std() == pytest.approx(limit / np.sqrt(3), rel=0.01)


def test_l2_adds_its_penalty_on_hidden_layers_only():
    model = families.build("mlp", config(l2=0.01, hidden=[8]))
    model(np.zeros((1, 28, 28, 1), np.float32))
    hidden = model.layers[2].kernel.numpy()
    assert len(model.losses) == 1
    assert float(model.losses[0]) == pytest.approx(0.01 * np.sum(hidden**2), rel=1e-5)
    assert not families.build("mlp", config()).losses


def test_l1_adds_its_penalty():
    model = families.build("mlp", config(l1=0.001, hidden=[8]))
    hidden = model.layers[2].kernel.numpy()
    assert float(model.losses[0]) == pytest.approx(0.001 * np.abs(hidden).sum(), rel=1e-5)


def test_kl_divergence_is_really_kl():
    y_true = np.array([[0.0, 1.0, 0.0]], np.float32)
    y_pred = np.array([[0.2, 0.5, 0.3]], np.float32)
    kl = loop.loss(config(loss_function="kl_divergence"))
    assert isinstance(kl, keras.losses.KLDivergence)
    assert float(kl(y_true, y_pred)) == pytest.approx(np.log(1 / 0.5), rel=1e-5)


def test_label_smoothing_smooths_and_crossentropy_does_not():
    y_true = np.array([[0.0, 1.0]], np.float32)
    y_pred = np.array([[0.25, 0.75]], np.float32)
    plain = loop.loss(config(loss_function="crossentropy"))
    smooth = loop.loss(config(loss_function="label_smoothing", label_smoothing=0.2))
    assert float(plain(y_true, y_pred)) == pytest.approx(-np.log(0.75), rel=1e-5)
    # Smoothed targets: [0.1, 0.9].
    assert float(smooth(y_true, y_pred)) == pytest.approx(-(0.1 * np.log(0.25) + 0.9 * np.log(0.75)), rel=1e-5)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_is_built_with_its_settings(name):
    cfg = config(optimizer=name, learning_rate=0.0123, lr_schedule="constant", momentum=0.8, nesterov=True)
    opt = loop.optimizer({**cfg, "weight_decay": 0.01}, 10)
    expected = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "nadam": "Nadam"}[name]
    assert type(opt).__name__ == expected
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(0.0123)
    if name in ("sgd", "rmsprop"):
        assert opt.momentum == 0.8
    if name == "sgd":
        assert opt.nesterov
    assert opt.weight_decay == (0.01 if name == "adamw" else None)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_learning_rate_schedules(schedule):
    cfg = config(lr_schedule=schedule, learning_rate=0.1, epochs=10, lr_decay_epochs=2, lr_decay_factor=0.5)
    lr = loop.learning_rate(cfg, steps_per_epoch=10)
    if schedule in ("constant", "plateau"):
        assert lr == 0.1
        plateau = [c for c in loop.callbacks(cfg) if isinstance(c, keras.callbacks.ReduceLROnPlateau)]
        assert len(plateau) == (schedule == "plateau")
        if plateau:  # lr_decay_factor and lr_decay_epochs: its factor and its patience
            assert (plateau[0].factor, plateau[0].patience, plateau[0].monitor) == (0.5, 2, "val_loss")
    elif schedule == "cosine":
        assert float(lr(0)) == pytest.approx(0.1)
        assert float(lr(50)) == pytest.approx(0.05)
        assert float(lr(100)) == pytest.approx(0.0, abs=1e-7)
    else:
        assert float(lr(19)) == pytest.approx(0.1)
        assert float(lr(20)) == pytest.approx(0.05)
        assert float(lr(45)) == pytest.approx(0.025)


@pytest.mark.parametrize("loss_function", LOSSES)
def test_every_loss_trains(loss_function, splits, tmp_path):
    model, _ = fit("mlp", config(loss_function=loss_function, epochs=4, hidden=[32]), splits, tmp_path)
    expected = {"crossentropy": "CategoricalCrossentropy", "kl_divergence": "KLDivergence"}
    assert type(model.loss).__name__ == expected.get(loss_function, "CategoricalCrossentropy")
    losses = [float(row.split("\t")[-1]) for row in curve(tmp_path, "train/loss")]
    assert len(losses) == 4
    assert losses[-1] < 0.8 * losses[0], losses


def test_batch_norm_and_dropout_are_placed_as_asked():
    def count(model, kind):
        return sum(isinstance(layer, kind) for layer in model.layers)

    assert count(families.build("dnn", config("dnn", batch_norm=True)), keras.layers.BatchNormalization) == 2
    assert count(families.build("dnn", config("dnn", batch_norm=False)), keras.layers.BatchNormalization) == 0
    mlp = families.build("mlp", config(dropout=0.3))
    dropouts = [layer.rate for layer in mlp.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [0.3]  # after the last hidden layer only


def test_augmentation_changes_training_batches_only(splits):
    x, y = splits["train"]
    plain = next(iter(inputs.dataset(x, y, 32, shuffle=False, augment=False, seed=0)))[0].numpy()
    augmented = next(iter(inputs.dataset(x, y, 32, shuffle=False, augment=True, seed=0)))[0].numpy()
    assert plain.shape == augmented.shape == (32, 28, 28, 1)
    np.testing.assert_array_equal(plain, x[:32])
    assert not np.array_equal(plain, augmented)


def test_shift_and_flip_is_keras_bilinear_translation_then_mirror():
    rng = np.random.default_rng(0)
    images = rng.random((6, 28, 28, 1), dtype=np.float32)
    shifts = rng.uniform(-2, 2, (6, 2)).astype(np.float32)  # (down, right), fractional
    flip = np.array([True, False, True, False, False, True])
    # Keras' transform maps each output pixel (x, y) to the input point (x - right, y - down).
    ones, zeros = np.ones(6), np.zeros(6)
    transform = np.stack([ones, zeros, -shifts[:, 1], zeros, ones, -shifts[:, 0], zeros, zeros], axis=1)
    shifted = keras.ops.image.affine_transform(
        images, transform.astype(np.float32), interpolation="bilinear", fill_mode="constant"
    )
    expected = np.where(flip[:, None, None, None], np.asarray(shifted)[:, :, ::-1], np.asarray(shifted))
    got = inputs.shift_and_flip(images, shifts, flip).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_whole_pixel_shifts_move_pixels_exactly():
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 10, 10, 0], image[0, 0, 27, 0] = 0.5, 1.0
    moved = inputs.shift_and_flip(image, np.array([[1.0, -2.0]], np.float32), np.array([False])).numpy()
    expected = np.zeros_like(image)
    expected[0, 11, 8, 0], expected[0, 1, 25, 0] = 0.5, 1.0
    np.testing.assert_array_equal(moved, expected)
    mirrored = inputs.shift_and_flip(image, np.array([[0.0, 0.0]], np.float32), np.array([True])).numpy()
    np.testing.assert_array_equal(mirrored, image[:, :, ::-1])


def whole_shifts_of(image: np.ndarray, original: np.ndarray, largest: int) -> set[tuple[int, int]]:
    """Every (down, right) by which ``original``, mirrored or not, becomes exactly ``image``."""
    return {
        (down, right)
        for down in range(-largest, largest + 1)
        for right in range(-largest, largest + 1)
        for mirrored in (False, True)
        if np.array_equal(view(original[None], down, right, mirrored).numpy()[0], image)
    }


def test_whole_pixel_augmentation_moves_every_image_by_whole_pixels_and_fractional_does_not(splits):
    x, y = splits["train"]
    n = 256

    def batch(whole_pixels: bool) -> np.ndarray:
        ds = inputs.dataset(x, y, n, shuffle=False, augment=True, seed=0, max_shift=2, whole_pixels=whole_pixels)
        return next(iter(ds))[0].numpy()

    whole = [whole_shifts_of(image, original, 2) for image, original in zip(batch(True), x[:n], strict=True)]
    assert all(whole)
    assert set().union(*whole) == {(d, r) for d in range(-2, 3) for r in range(-2, 3)}
    fractional = [whole_shifts_of(image, original, 2) for image, original in zip(batch(False), x[:n], strict=True)]
    assert not any(fractional)


def test_augmentation_without_shift_only_mirrors_images(splits):
    x, y = splits["train"]
    batch = next(iter(inputs.dataset(x, y, 64, shuffle=False, augment=True, seed=0, max_shift=0)))[0].numpy()
    mirrored = [not np.array_equal(image, original) for image, original in zip(batch, x[:64], strict=True)]
    for image, original, flipped in zip(batch, x[:64], mirrored, strict=True):
        np.testing.assert_array_equal(image, original[:, ::-1] if flipped else original)
    assert 0 < sum(mirrored) < 64


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_stops_reports_the_best_epoch_and_restores_its_weights_if_asked(splits, tmp_path, restore):
    # Patience 1 with a learning rate high enough for the val loss to bounce (but not to blow up)
    # stops well before 30 epochs, one epoch after the best.
    cfg = config(epochs=30, early_stopping=1, restore_best_weights=restore, optimizer="adam", learning_rate=0.05)
    model, summary = fit("mlp", cfg, splits, tmp_path)
    val_loss = [float(row.split("\t")[-1]) for row in curve(tmp_path, "eval/loss")]
    assert summary["epochs_run"] == len(val_loss) < 30
    assert summary["best_epoch"] == int(np.argmin(val_loss)) + 1 == summary["epochs_run"] - 1
    final_loss, _ = model.evaluate(
        inputs.dataset(*splits["val"], 1024, shuffle=False, augment=False, seed=0), verbose=0
    )
    kept = min(val_loss) if restore else val_loss[-1]  # the best epoch's weights, or the last's
    assert final_loss == pytest.approx(kept, rel=1e-5)


def test_test_curve_logs_test_metrics_per_epoch(splits, tmp_path):
    fit("mlp", config(epochs=2, test_curve=True), splits, tmp_path)
    rows = (tmp_path / "live/plots/metrics/test/accuracy.tsv").read_text().splitlines()
    assert len(rows) == 3  # header and two epochs


def test_non_finite_loss_stops_with_a_clear_error(splits, tmp_path):
    x, y = splits["train"]
    poisoned = dict(splits, train=(np.full_like(x, 1e38), y))  # overflows to inf in the first layer
    # Keras reports the loss once per execution of STEPS_PER_EXECUTION (32) steps: this 5-step epoch
    # is one execution, so the error names its batches.
    with pytest.raises(
        loop.DivergedError, match=r"loss is (nan|inf) at epoch 1, in batches 1-5; lower train\.learning_rate"
    ):
        fit("mlp", config(), poisoned, tmp_path)


def test_with_one_step_per_execution_a_non_finite_loss_names_its_first_batch(splits, tmp_path):
    from fmnist.training import distribute

    x, y = splits["train"]
    poisoned = dict(splits, train=(np.full_like(x, 1e38), y))
    cfg = config(distribute="mirrored", devices=[])  # mirrored runs one step per execution
    runtime.configure(cfg)
    strategy = distribute.strategy(cfg)
    with strategy.scope():
        model = families.build("mlp", cfg)
    with pytest.raises(loop.DivergedError, match=r"loss is (nan|inf) at epoch 1, batch 1; "):
        loop.train(model, cfg, poisoned, tmp_path / "live", strategy)


def test_the_loss_check_names_the_batches_since_the_last_check_in_every_epoch():
    check = loop.StopOnDivergence()
    check.set_params({"steps": 70})
    for epoch in (0, 1):
        check.on_epoch_begin(epoch)
        check.on_train_batch_end(31, {"loss": 2.0})
        check.on_train_batch_end(63, {"loss": 2.0})
        if epoch == 1:
            with pytest.raises(loop.DivergedError, match=r"at epoch 2, in batches 65-70; "):
                check.on_train_batch_end(95, {"loss": float("nan")})  # Keras' index of a full last execution


def test_batch_norm_momentum_is_keras_own_at_full_budgets_and_forgets_its_start_in_short_runs():
    # Every family of record trains 4,000 steps or more: Keras' 0.99, so their bits stay.
    for steps in (1000, 4220, 5908, 10**6):
        assert loop.batch_norm_momentum(steps) == 0.99
    # The quick profile's 86 steps, a few, one: the starting values (mean 0, variance 1) weigh
    # momentum**steps at the end, which must be nothing.
    for steps in (1, 6, 86, 999):
        assert loop.batch_norm_momentum(steps) ** steps < 1e-4, steps


@pytest.mark.parametrize("family", ["dnn", "airbench"])
def test_a_short_run_leaves_batch_norm_statistics_of_its_data_not_of_their_start(family, splits, tmp_path):
    # 2 epochs of 5 steps: with Keras' momentum 0.99 the moving variances would still be 90% the
    # starting 1.0 (airbench at chance on the quick profile, issue 43): a median factor of 4.6 to
    # 100 from the data's here, against 1.1 to 1.6 with the momentum of the run's length.
    model, _ = fit(family, config(family, epochs=2), splits, tmp_path)
    x = splits["train"][0]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms
    for layer in norms:
        seen = keras.Model(model.input, layer.input)(x, training=False).numpy()
        data_var = seen.reshape(-1, seen.shape[-1]).var(0)
        moving_var = keras.ops.convert_to_numpy(layer.moving_variance)
        factor = float(np.exp(np.median(np.abs(np.log(moving_var / data_var)))))
        assert factor < 2, f"{layer.name}: moving variance a median factor {factor:.1f} from the data's"


@pytest.mark.slow
def test_several_steps_per_execution_give_the_same_weights_as_one(splits, tmp_path, monkeypatch):
    # The speed-up of STEPS_PER_EXECUTION must not change the results of record.
    cfg = config(epochs=2, batch_size=8, batch_norm=True)  # 20 steps per epoch: 2 executions of 16 and a rest
    monkeypatch.setattr(loop, "STEPS_PER_EXECUTION", 16)
    chunked, _ = fit("mlp", cfg, splits, tmp_path / "chunked")
    monkeypatch.setattr(loop, "STEPS_PER_EXECUTION", 1)
    stepwise, _ = fit("mlp", cfg, splits, tmp_path / "stepwise")
    assert chunked.steps_per_execution == 16
    assert stepwise.steps_per_execution == 1
    for a, b in zip(chunked.get_weights(), stepwise.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_airbench_in_mixed_bfloat16_computes_its_body_in_bfloat16_and_its_classifier_in_float32(tmp_path):
    from fmnist.models.saving import load_model, save_model

    cfg = config("airbench", precision="mixed_bfloat16")
    runtime.configure(cfg)
    model = families.build("airbench", cfg)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs
    assert {layer.compute_dtype for layer in convs} == {"bfloat16"}
    assert {v.dtype for v in model.weights} == {"float32"}  # the weights stay float32
    assert model.layers[-1].compute_dtype == "float32"
    assert model.output.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # put back for whatever is built next
    if why_not := bfloat16_convolutions():
        pytest.skip(why_not)
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    save_model(model, tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert {layer.compute_dtype for layer in again.layers if isinstance(layer, keras.layers.Conv2D)} == {"bfloat16"}
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    plain = families.build("airbench", {**cfg, "precision": "float32"})
    assert {layer.compute_dtype for layer in plain.layers} == {"float32"}


def test_airbench_whitening_stem_whitens_the_training_patches_and_stays_frozen_through_training(splits, tmp_path):
    from fmnist.models.families.airbench import whitening_filters

    cfg = config("airbench", stem=8, whiten=True, epochs=2)
    runtime.configure(cfg)
    model = families.build("airbench", cfg)
    families.prepare("airbench", model, cfg, splits["train"][0])
    stem = model.get_layer("whiten")
    set_to = keras.ops.convert_to_numpy(stem.kernel)
    np.testing.assert_array_equal(set_to, whitening_filters(splits["train"][0]))
    # Its first four outputs over the training patches: unit variance, uncorrelated (up to the
    # eigenvalue floor); the last four their negatives.
    out = keras.ops.convert_to_numpy(stem(splits["train"][0])).reshape(-1, 8).astype(np.float64)
    cov = out[:, :4].T @ out[:, :4] / len(out)
    np.testing.assert_allclose(cov, np.diag(np.diag(cov)), atol=1e-4)
    assert np.diag(cov).min() > 0.5
    assert np.diag(cov).max() <= 1.0
    np.testing.assert_array_equal(out[:, 4:], -out[:, :4])
    loop.train(model, cfg, splits, tmp_path / "live")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stem.kernel), set_to)  # frozen
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers[:4])


def test_airbench_refuses_whitening_with_a_stem_other_than_eight():
    with pytest.raises(ParamsError, match=r"families.airbench.whiten needs stem: 8 .*; stem is 4$"):
        families.build("airbench", config("airbench", whiten=True))


def test_airbench_dirac_start_passes_each_block_convs_inputs_through_its_first_filters(splits):
    cfg = config("airbench", dirac=True)
    runtime.configure(cfg)
    model = families.build("airbench", cfg)
    families.prepare("airbench", model, cfg, splits["train"][0])
    blocks = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][1:]
    assert blocks
    assert any(layer.kernel.shape[3] > layer.kernel.shape[2] for layer in blocks)  # some widen (4 -> 8)
    x = np.random.default_rng(0).random((2, 6, 6, 8), dtype=np.float32)
    for layer in blocks:
        channels = layer.kernel.shape[2]
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        out = keras.ops.convert_to_numpy(keras.ops.conv(x[..., :channels], kernel, padding="same"))
        np.testing.assert_allclose(out[..., :channels], x[..., :channels], atol=1e-6)
        if kernel.shape[3] > channels:
            assert np.abs(kernel[..., channels:]).sum() > 0  # the other filters keep their random start
    plain = families.build("airbench", config("airbench"))
    families.prepare("airbench", plain, config("airbench"), splits["train"][0])
    first = [layer for layer in plain.layers if isinstance(layer, keras.layers.Conv2D)][1]
    assert not np.allclose(keras.ops.convert_to_numpy(first.kernel)[1, 1, 0, 0], 1.0)  # off by default


def test_ema_replaces_the_weights_with_their_moving_average_when_training_ends(splits, tmp_path):
    model, _ = fit("mlp", config("mlp", ema=0.9), splits, tmp_path)
    averages = [v for v in model.optimizer._model_variables_moving_average if v is not None]
    assert len(averages) == len(model.trainable_weights)
    for weight, average in zip(model.trainable_weights, averages, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), keras.ops.convert_to_numpy(average))
    plain, _ = fit("mlp", config("mlp"), splits, tmp_path / "plain")
    assert not plain.optimizer.use_ema
    assert not np.array_equal(
        keras.ops.convert_to_numpy(model.trainable_weights[0]), keras.ops.convert_to_numpy(plain.trainable_weights[0])
    )


def test_ema_every_puts_the_average_in_place_of_the_weights_during_training(splits, tmp_path):
    # 160 images in batches of 32: 5 steps an epoch. Overwritten every 5 steps, the weights at each
    # epoch's end are the average, before fit's own last overwrite.
    cfg = config("mlp", ema=0.9, ema_every=5)
    runtime.configure(cfg)
    model = families.build("mlp", cfg)
    seen = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            averages = model.optimizer._model_variables_moving_average
            pairs = zip(model.trainable_weights, averages, strict=True)
            seen.append([np.array_equal(np.asarray(w), np.asarray(a)) for w, a in pairs])

    loop.compile_model(model, cfg, 5, 1)
    model.fit(inputs.training_batches(*splits["train"], cfg, 32), epochs=2, callbacks=[Snapshot()], verbose=0)
    assert seen == [[True] * len(model.trainable_weights)] * 2
    assert model.optimizer.ema_overwrite_frequency == 5


def test_batch_norm_momentum_is_the_params_own_unless_the_run_is_too_short_to_forget_its_start(splits, tmp_path):
    assert loop.batch_norm_momentum(10_000, 0.6) == 0.6
    assert loop.batch_norm_momentum(10_000) == 0.99
    assert loop.batch_norm_momentum(30, 0.9) == pytest.approx(1 - 1 / 3)  # a window of a tenth of 30 steps
    # 6 epochs of 5 steps: the short-run rule allows up to 0.67, so the params' 0.6 stands.
    model, _ = fit("dnn", config("dnn", batch_norm_momentum=0.6, epochs=6), splits, tmp_path)
    momenta = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.6}
