"""Users' pictures prepared as Fashion-MNIST's were made, and every bad input refused in one line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist import predict
from fmnist.serving.images import SIZE, image_files, prepare, read
from fmnist.utils.errors import DataError, run_stage
from tests.conftest import write_params


def garment(h: int = 28, w: int = 20) -> np.ndarray:
    """A dataset-like image: a light object whose longest side spans the 28 pixels, on black."""
    image = np.zeros((SIZE, SIZE), np.uint8)
    top, left = (SIZE - h) // 2, (SIZE - w) // 2
    rows = np.linspace(120, 250, h, dtype=np.uint8)[:, None]
    image[top : top + h, left : left + w] = rows
    image[top + h // 3 : top + h // 2, left + 2 : left + 5] = 40  # some inner detail
    return image


def save(tmp_path, array: np.ndarray, name: str, mode: str | None = None, **kwargs) -> Image.Image:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    image.save(tmp_path / name, **kwargs)
    return read(tmp_path / name)


def test_a_dataset_image_comes_through_unchanged_even_one_its_object_does_not_span(tmp_path):
    original = garment()
    assert np.array_equal(prepare(save(tmp_path, original, "g.png")), original)
    small = garment(h=20, w=12)  # a margin all round, as many Fashion-MNIST images have
    assert np.array_equal(prepare(save(tmp_path, small, "s.png")), small)
    assert np.array_equal(prepare(save(tmp_path, 255 - small, "n.png")), small)  # negated back


def test_the_same_garment_negated_upscaled_in_colour_jpeg_comes_back_close(tmp_path):
    original = garment()
    photo = np.asarray(Image.fromarray(255 - original).resize((84, 84), Image.Resampling.NEAREST))
    prepared = prepare(save(tmp_path, photo, "g.jpg", mode="RGB", quality=90))
    assert prepared.shape == (SIZE, SIZE)
    assert prepared[:, 0].max() < 30  # the background is black again
    assert np.abs(prepared.astype(int) - original).mean() < 8


def test_the_object_is_trimmed_resized_to_28_on_its_long_side_and_centred(tmp_path):
    big = np.full((300, 500), 255, np.uint8)  # a photo: white background, a wide dark object off-centre
    big[40:140, 20:420] = 30
    prepared = prepare(save(tmp_path, big, "wide.png"))
    rows, cols = np.nonzero(prepared > 10)
    assert (cols.min(), cols.max()) == (0, SIZE - 1)  # the long side spans the 28 pixels
    assert rows.max() - rows.min() + 1 == 7  # 100 x 400 keeps its aspect ratio: 7 x 28
    assert abs((rows.min() + rows.max()) / 2 - (SIZE - 1) / 2) <= 0.5  # centred


def test_transparent_parts_count_as_a_light_background(tmp_path):
    rgba = np.zeros((60, 60, 4), np.uint8)  # fully transparent, black underneath
    rgba[10:50, 20:40] = (200, 30, 30, 255)  # an opaque red garment
    prepared = prepare(save(tmp_path, rgba, "cut-out.png"))
    assert prepared[:, 0].max() == 0  # 40 x 20: the long side fills the height, black beside it
    assert prepared[SIZE // 2, SIZE // 2] > 100  # the garment is light on black, as in the dataset


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "I;16", "1"])
def test_every_pillow_mode_gives_the_garment_as_a_28x28_byte_image(tmp_path, mode):
    prepared = prepare(save(tmp_path, garment(), "g.png", mode=mode))
    assert (prepared.shape, prepared.dtype) == ((SIZE, SIZE), np.uint8)
    if mode == "1":  # one bit a pixel, dithered: the same object in the same place, not the same levels
        object_pixels = np.argwhere(prepared > 0)
        assert (object_pixels.min(0).tolist(), object_pixels.max(0).tolist()) == ([0, 4], [27, 23])
        assert np.corrcoef(prepared.ravel(), garment().ravel())[0, 1] > 0.6
    else:  # every grey level kept: a palette of the image's own levels, 16 bits of 8-bit values
        np.testing.assert_array_equal(prepared, garment())


def test_bad_files_are_one_line_naming_the_file(tmp_path, monkeypatch):
    (tmp_path / "notes.png").write_text("not a picture\n")
    with pytest.raises(DataError, match=r"notes\.png is not an image Pillow can read"):
        read(tmp_path / "notes.png")

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), np.uint8)).save(buffer, "PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match=r"cut\.png cannot be decoded: "):
        read(tmp_path / "cut.png")

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)  # a bomb, scaled down to test quickly
    Image.new("L", (120, 120)).save(tmp_path / "bomb.png")  # between the limit and twice it: a warning
    Image.new("L", (300, 300)).save(tmp_path / "bigger.png")  # over twice it: Pillow's own error
    for name in ("bomb.png", "bigger.png"):
        with pytest.raises(DataError, match=rf"{name} has more pixels than Pillow's decompression-bomb limit"):
            read(tmp_path / name)


def test_folders_give_their_files_and_an_empty_or_missing_path_is_refused(tmp_path):
    (tmp_path / "pics").mkdir()
    for name in ("b.png", "a.jpg", ".hidden"):
        (tmp_path / "pics" / name).write_bytes(b"")
    assert [p.name for p in image_files([tmp_path / "pics"])] == ["a.jpg", "b.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty is an empty folder; name image files or a folder that holds some$"):
        image_files([tmp_path / "empty"])
    with pytest.raises(DataError, match=r"nowhere\.png does not exist$"):
        image_files([tmp_path / "nowhere.png"])


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("white.png", Image.new("L", (28, 28), 255)),
        ("black.jpg", Image.new("RGB", (300, 200), (0, 0, 0))),
        ("dot.png", Image.new("L", (1, 1), 128)),
        ("cmyk.jpg", Image.new("CMYK", (64, 64), (0, 0, 0, 0))),
        ("wall.jpg", Image.new("RGB", (4000, 3000), (231, 228, 220))),
        ("clear.png", Image.new("RGBA", (50, 50), (0, 0, 0, 0))),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_picture_with_nothing_in_it_has_no_object_to_classify(tmp_path, name, image):
    image.save(tmp_path / name)
    assert prepare(read(tmp_path / name)) is None


def test_an_animation_is_read_at_its_first_frame_and_says_how_many_it_has(tmp_path):
    frames = [Image.fromarray(garment()), Image.new("L", (SIZE, SIZE)), Image.fromarray(255 - garment())]
    frames[0].save(tmp_path / "spin.gif", save_all=True, append_images=frames[1:])
    picture = read(tmp_path / "spin.gif")
    assert picture.info["frames"] == 3
    assert np.array_equal(prepare(picture), prepare(read_still(tmp_path, frames[0])))
    assert read_still(tmp_path, frames[0]).info["frames"] == 1


def read_still(tmp_path, image: Image.Image) -> Image.Image:
    image.save(tmp_path / "still.gif")
    return read(tmp_path / "still.gif")


@pytest.fixture
def in_project(tmp_path, monkeypatch):
    """A working directory with a params.yaml: all fmnist.predict reads before the pictures."""
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    return tmp_path


def test_predict_given_a_bad_file_exits_1_with_one_line_and_prints_nothing_before(in_project, capsys, monkeypatch):
    Image.fromarray(garment()).save("good.png")
    Path("notes.png").write_text("not a picture\n")
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), np.uint8)).save(buffer, "PNG")
    Path("cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    Image.new("L", (120, 120)).save("bomb.png")
    cases = {
        "notes.png": "error: notes.png is not an image Pillow can read",
        "cut.png": "error: cut.png cannot be decoded: image file is truncated",
        "bomb.png": (
            "error: bomb.png has more pixels than Pillow's decompression-bomb limit (10000); scale it down first"
        ),
    }
    for bad, message in cases.items():
        if bad == "bomb.png":
            monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)  # a bomb, scaled down to test quickly
        # The good picture first: it is read, but nothing is printed and no model is loaded.
        assert run_stage(predict.main, ["good.png", bad, "--family", "mlp"]) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1
        assert err.startswith(message), err


def test_predict_skips_a_file_in_a_folder_that_is_no_image_and_names_it(in_project, capsys):
    Path("photos").mkdir()
    Path("photos/README.txt").write_text("holiday photos\n")
    Image.new("L", (28, 28), 255).save("photos/white.png")  # blank: answered with no model
    assert run_stage(predict.main, ["photos", "--family", "mlp"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "mlp (named by --family):",
        "photos/white.png: no object found (nothing in it stands out from the background)",
    ]
    assert err == "skipped photos/README.txt: not an image Pillow can read\n"

    Path("photos/white.png").unlink()
    assert run_stage(predict.main, ["photos", "--family", "mlp"]) == 1
    assert capsys.readouterr().err == (
        "error: no image among photos/README.txt; name image files or a folder that holds some\n"
    )
    # Named on the command line, the same file is an error, not a skip.
    assert run_stage(predict.main, ["photos/README.txt", "--family", "mlp"]) == 1
    assert capsys.readouterr().err == "error: photos/README.txt is not an image Pillow can read\n"


def test_predict_help_reads_as_plain_text(capsys):
    with pytest.raises(SystemExit):
        predict.main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "Classify your own pictures with a trained model: python -m fmnist.predict IMAGE_OR_FOLDER..." in shown
    assert "`" not in shown


def test_a_photo_is_read_upright_as_its_exif_orientation_says(tmp_path):
    # Stored turned a quarter to the left, with the tag a camera writes: "turn right to show".
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(garment())))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    stored.save(tmp_path / "phone.png", exif=exif)
    np.testing.assert_array_equal(prepare(read(tmp_path / "phone.png")), garment())


def test_a_palette_pictures_transparent_colour_is_background(tmp_path):
    # A dark garment on a transparent palette colour: the transparent part is the light background a
    # product photo has, so the garment comes out light on black. Were the transparency ignored, the
    # background would be black (palette entry 0) and the garment too dark to find.
    indices = np.zeros((SIZE, SIZE), np.uint8)
    indices[:, 4:24] = 1
    picture = Image.fromarray(indices, mode="P")
    picture.putpalette([0, 0, 0, 60, 60, 60] + [0, 0, 0] * 254)
    picture.save(tmp_path / "cut-out.png", transparency=0)
    same_on_white = Image.fromarray(np.where(indices == 1, 60, 255).astype(np.uint8))
    same_on_white.save(tmp_path / "on-white.png")
    prepared = prepare(read(tmp_path / "cut-out.png"))
    np.testing.assert_array_equal(prepared, prepare(read(tmp_path / "on-white.png")))
    assert prepared[:, 0].max() == 0
    assert prepared[SIZE // 2, SIZE // 2] > 150


def test_an_answer_below_the_low_confidence_level_says_the_picture_may_be_no_garment():
    import numpy as np

    from fmnist.predict import LOW_CONFIDENCE, answer, line

    unsure = np.full(10, (1 - 0.3) / 9)
    unsure[8] = 0.3  # a bag at 30%, the rest spread
    result = answer(Path("noise.jpg"), 1, unsure)
    assert result["low_confidence"] is True
    assert line(result) == (
        "noise.jpg: Bag 30.0%, T-shirt/top 7.8%, Trouser 7.8% "
        f"(low confidence, below {LOW_CONFIDENCE:.0%}: it may be no garment the model knows)"
    )
    sure = np.eye(10)[8] * 0.98 + 0.002
    assert answer(Path("bag.png"), 1, sure)["low_confidence"] is False
    assert "low confidence" not in line(answer(Path("bag.png"), 1, sure))
    assert answer(Path("blank.png"), 1, None)["low_confidence"] is False  # no object: its own answer
