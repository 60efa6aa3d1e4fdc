"""Plot helpers: the image grid the lessons share."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from transfer_utils.core import plots  # noqa: E402


def test_image_rows_draws_one_labelled_row_per_set():
    grey = np.random.default_rng(0).integers(0, 17, size=(5, 8, 8))
    colour = np.random.default_rng(1).integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    fig = plots.image_rows({"grey": grey, "colour": colour}, title="two sets", n=4)
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["grey", "colour"]
    assert np.array_equal(axes[1, 2].images[0].get_array(), colour[2]) and fig._suptitle.get_text() == "two sets"
    plt.close(fig)
