from __future__ import annotations

import numpy as np
import pytest

from colorcli.color.bins import grid_layout, load_bins, reference_bins, save_bins
from colorcli.errors import BadWeights


def test_reference_bins_count_order_and_table() -> None:
    b = reference_bins()
    assert b.shape == (313, 2)
    # a ascending, then b ascending
    assert (np.lexsort((b[:, 1], b[:, 0])) == np.arange(313)).all()
    # spot checks against the REFERENCE.md table
    assert b[0].tolist() == [-90, 50] and b[4].tolist() == [-90, 90]
    assert b[-1].tolist() == [100, 0] and b[-10].tolist() == [100, -90]
    per_a = {a: int((b[:, 0] == a).sum()) for a in np.unique(b[:, 0])}
    assert per_a[0] == 18 and per_a[40] == 20 and per_a[-90] == 5
    assert set(np.unique(b % 10)) == {0.0}


def test_grid_layout_round_trip() -> None:
    b = reference_bins()
    lay = grid_layout(b)
    assert lay.grid == 10 and lay.shape == (20, 22)
    centres = np.stack([lay.a0 + lay.ia * lay.grid, lay.b0 + lay.ib * lay.grid], 1)
    assert np.array_equal(centres, b)
    table = lay.lookup()
    assert (table >= 0).sum() == 313


def test_save_load(tmp_path) -> None:
    p = save_bins(tmp_path / "bins", reference_bins())
    assert p.suffix == ".npy"
    assert np.array_equal(load_bins(p), reference_bins())
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(BadWeights, match=r"bad\.npy"):
        load_bins(tmp_path / "bad.npy")
    with pytest.raises(BadWeights, match="no such file"):
        load_bins(tmp_path / "missing.npy")
