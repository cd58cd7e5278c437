import numpy as np
from PIL import Image

from keras_meta import plots


def test_episode_picture(tmp_path):
    rng = np.random.default_rng(0)
    sx, qx = rng.random((3, 8, 8, 1)), rng.random((6, 8, 8, 1))
    sy, qy = np.arange(3), np.repeat(np.arange(3), 2)
    out = plots.episode(sx, sy, qx, qy, tmp_path / "e.png", predictions=np.eye(3)[qy])
    with Image.open(out) as image:
        width, height = image.size
    assert width > 300 and height > 100


def test_learning_curve_skips_missing_values(tmp_path):
    csv = tmp_path / "h.csv"
    csv.write_text("epoch,loss,val_loss\n0,2.0,NA\n1,1.0,0.5\n")
    assert plots.learning_curve(csv, tmp_path / "c.png").exists()
