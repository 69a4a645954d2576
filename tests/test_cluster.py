"""Stage 5: LOF + k-means image prototypes, and the contract files they are written to."""

import numpy as np
import pytest
import torch

from vlcp import contract
from vlcp.cluster import cluster_members, image_prototypes


def blobs(n_per=20, k=3, seed=0, shape=(4, 2, 2)):
    """``k`` well-separated groups of latents plus one far outlier at the end."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(k, int(np.prod(shape))))
    points = np.concatenate([c + rng.normal(0, 0.5, size=(n_per, centres.shape[1])) for c in centres])
    points = np.concatenate([points, np.full((1, centres.shape[1]), 200.0)])
    return torch.from_numpy(points).float().reshape(-1, *shape)


def test_deterministic_for_a_seed_and_drops_the_outlier():
    latents = blobs()
    first = image_prototypes(latents, ipc=3, seed=1, contamination=0.01, n_neighbors=10, n_init=4)
    second = image_prototypes(latents, ipc=3, seed=1, contamination=0.01, n_neighbors=10, n_init=4)
    inliers, labels, centres, note = first
    assert torch.equal(centres, second[2]) and np.array_equal(labels, second[1])
    assert not inliers[-1] and labels[-1] == -1, "the far point is an outlier"
    assert centres.shape == (3, 4, 2, 2) and note is None
    assert sorted(np.bincount(labels[labels >= 0]).tolist()) == [20, 20, 20]


def test_contamination_zero_keeps_all():
    inliers, labels, _, _ = image_prototypes(blobs(), ipc=4, seed=0, contamination=0.0, n_init=2)
    assert inliers.all() and (labels >= 0).all()


def test_fewer_inliers_than_ipc_still_gives_ipc_prototypes():
    latents = blobs(n_per=3, k=2)  # 7 images; LOF drops the far one, leaving 6 inliers for IPC 7
    inliers, labels, centres, note = image_prototypes(
        latents, ipc=7, seed=0, contamination=0.2, n_neighbors=3, n_init=2
    )
    assert centres.shape[0] == 7 and inliers.all() and (labels >= 0).all()
    assert "outlier removal skipped" in note


def test_fewer_images_than_ipc_reuses_images_with_a_note():
    latents = blobs(n_per=1, k=2)  # 3 images
    inliers, labels, centres, note = image_prototypes(latents, ipc=5, seed=0, contamination=0.1, n_init=2)
    assert centres.shape[0] == 5 and "only 3 images for IPC 5" in note
    assert torch.equal(centres[3], latents[0]) and torch.equal(centres[4], latents[1])
    members = cluster_members(["a", "b", "c"], labels, 5)
    assert members == [["a"], ["b"], ["c"], ["a"], ["b"]]


def test_clusters_round_trip_through_the_contract(tmp_path):
    latents = blobs()
    images = [f"train/x/{i}.png" for i in range(len(latents))]
    inliers, labels, centres, note = image_prototypes(latents, ipc=3, seed=0, contamination=0.01, n_init=2)
    clusters = {
        "members": cluster_members(images, labels, 3),
        "outliers": [img for img, keep in zip(images, inliers) if not keep],
        "note": note,
    }
    contract.write_clusters(tmp_path / "x.json", tmp_path / "x.safetensors", clusters, centres)
    back, back_centres = contract.read_clusters(tmp_path / "x.json", tmp_path / "x.safetensors")
    assert back == clusters and torch.equal(back_centres, centres)
    assert back["outliers"] == ["train/x/60.png"]
    assert all(m == sorted(m, key=images.index) for m in back["members"]), "members stay in index order"
    with pytest.raises(ValueError):
        contract.write_clusters(tmp_path / "y.json", tmp_path / "y.safetensors", clusters, centres[:2])


def test_prototypes_round_trip(tmp_path):
    rows = [
        {"prompt": "a dog", "image": "train/x/1.png", "keywords": [["dog", 2]], "nonrepresentative": ["x"]},
        {"prompt": "label", "image": None, "keywords": [], "nonrepresentative": ["x"]},
    ]
    contract.write_prototypes(tmp_path / "p.json", rows)
    assert contract.read_prototypes(tmp_path / "p.json") == rows
    (tmp_path / "bad.json").write_text('[{"prompt": "x"}]')
    with pytest.raises(contract.ContractError, match="bad.json: expected a list of objects"):
        contract.read_prototypes(tmp_path / "bad.json")


def test_distance_preserving_coordinates_give_the_same_clusters_as_raw_features():
    from vlcp.cluster import inlier_mask, isometric_features, kmeans

    rng = np.random.default_rng(0)
    raw = rng.normal(size=(120, 2000)) + 3 * rng.normal(size=(4, 2000))[rng.integers(0, 4, 120)]
    coordinates, to_original = isometric_features(raw)
    assert coordinates.shape[1] < raw.shape[1]
    raw_labels, raw_centres = kmeans(raw, 4, seed=0, n_init=3)
    labels, centres = kmeans(coordinates, 4, seed=0, n_init=3)
    assert np.array_equal(raw_labels, labels)
    assert np.allclose(to_original(centres), raw_centres, atol=1e-9)
    assert np.array_equal(inlier_mask(raw, 0.1, 10), inlier_mask(coordinates, 0.1, 10))
