import math

import pytest
import torch

from goldstone.observables.label_clusters import LabelClusters, label_clusters, normalise

# Two 4 x 4 units. max |V| = 10, so Vn = V / 10.
#   CLEAN: labels 0 and 1 form a block (0.5 and 0.4 off the diagonal), 2 stands alone, 3 is not recognised (0.1).
#   NOISY: the same plus (0, 3) = 0.4 and (3, 0) = 0.35, outside every cluster square.
CLEAN = [[10.0, 5.0, 0.0, 0.0],
         [4.0, 8.0, 0.0, 0.0],
         [0.0, 0.0, 6.0, 0.0],
         [0.0, 0.0, 0.0, 1.0]]
NOISY = [[10.0, 5.0, 0.0, 4.0],
         [4.0, 8.0, 0.0, 0.0],
         [0.0, 0.0, 6.0, 0.0],
         [3.5, 0.0, 0.0, 1.0]]


def test_block_structure_with_and_without_noise():
    result = label_clusters(torch.tensor([CLEAN, NOISY]))
    assert isinstance(result, LabelClusters)
    torch.testing.assert_close(result.normalised, torch.tensor([CLEAN, NOISY], dtype=torch.float64) / 10)
    assert result.recognised.tolist() == [[True, True, True, False]] * 2
    assert result.cluster.tolist() == [[0, 0, 1, -1]] * 2
    assert result.noise.tolist() == [0, 2]
    assert math.isinf(float(result.snr[0])) and float(result.snr[0]) > 0
    signal = (1.0 + 0.5 + 0.4 + 0.8 + 0.6) / 5  # the squares {0, 1} and {2}
    noise = (0.4 + 0.35) / 2
    assert float(result.snr[1]) == pytest.approx(signal / noise)
    assert result.sizes().tolist() == [2, 1, 2, 1]


def test_greedy_clusters_follow_the_diagonal_order():
    """Diagonal order 3, 1, 4, 0, 2. Cluster 0: 3 then 1 (mutual with 3); cluster 1: 4 then 0 (mutual with 4); 2
    is mutual with 4 but not with 0, so it starts cluster 2 and (2, 4), (4, 2) become noise, like the one-sided
    (0, 1). (2, 3) = 0.2 is below the threshold."""
    v = torch.zeros(5, 5)
    for label, value in zip(range(5), [7.0, 9.0, 6.0, 10.0, 8.0]):
        v[label, label] = value
    v[3, 1], v[1, 3] = 5.0, 4.0
    v[4, 0], v[0, 4] = 5.0, 4.0
    v[4, 2], v[2, 4] = 6.0, 5.0
    v[0, 1] = 4.0
    v[2, 3] = 2.0
    result = label_clusters(v.unsqueeze(0))
    assert result.recognised.tolist() == [[True] * 5]
    assert result.cluster.tolist() == [[1, 0, 2, 0, 1]]
    assert result.noise.tolist() == [3]
    signal = (0.9 + 0.4 + 0.5 + 1.0 + 0.7 + 0.4 + 0.5 + 0.8 + 0.6) / 9
    noise = (0.6 + 0.5 + 0.4) / 3
    assert float(result.snr[0]) == pytest.approx(signal / noise)
    assert result.sizes().tolist() == [2, 2, 1]


def test_default_threshold_is_inclusive_at_three_tenths_of_the_largest_entry():
    """The paper's code thresholds Vn >= 0.3. At max |V| = 10, a diagonal of exactly 3 (Vn = 0.3, the same
    double as the literal) is recognised and 2.99 is not; off the diagonal, 3 joins labels 0 and 1 into one
    cluster while 2.99 leaves them apart (and is not noise). The default agrees with an explicit 0.3."""
    at = torch.tensor([[[10.0, 3.0, 0.0], [3.0, 3.0, 0.0], [0.0, 0.0, 2.99]]])
    below = torch.tensor([[[10.0, 2.99, 0.0], [2.99, 3.0, 0.0], [0.0, 0.0, 2.99]]])
    result = label_clusters(torch.cat([at, below]))
    assert result.recognised.tolist() == [[True, True, False]] * 2
    assert result.cluster.tolist() == [[0, 0, -1], [0, 1, -1]]
    assert result.noise.tolist() == [0, 0]
    explicit = label_clusters(torch.cat([at, below]), threshold=0.3)
    assert torch.equal(explicit.cluster, result.cluster) and torch.equal(explicit.recognised, result.recognised)


def reference_clusters(v: list[list[float]], threshold: float) -> tuple[list[bool], list[int], int, float]:
    """The module docstring's recipe written out label by label for one unit: (recognised, cluster, noise, snr)."""
    k = len(v)
    scale = max(abs(x) for row in v for x in row)
    vn = [[x / scale if scale > 0 else 0.0 for x in row] for row in v]
    above = [[x >= threshold for x in row] for row in vn]
    recognised = [above[a][a] for a in range(k)]
    waiting = sorted((a for a in range(k) if recognised[a]), key=lambda a: -vn[a][a])  # stable: ties by label
    cluster = [-1] * k
    number = 0
    while waiting:
        members = []
        for b in waiting:
            if all(above[b][c] and above[c][b] for c in members):
                members.append(b)
        for b in members:
            cluster[b] = number
        waiting = [b for b in waiting if b not in members]
        number += 1
    square = [[cluster[a] >= 0 and cluster[a] == cluster[b] for b in range(k)] for a in range(k)]
    inside = [vn[a][b] for a in range(k) for b in range(k) if square[a][b]]
    outside = [vn[a][b] for a in range(k) for b in range(k) if above[a][b] and not square[a][b]]
    if outside:
        snr = (sum(inside) / len(inside) if inside else math.nan) / (sum(outside) / len(outside))
    else:
        snr = math.inf if inside else math.nan
    return recognised, cluster, len(outside), snr


@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_random_units_match_a_label_by_label_reference(threshold):
    """300 random units of 7 labels: entries uniform in [-0.2, 0.6], plus 0.6 on 80 % of the entries linking
    labels of the same hidden group (3 groups), so that clusters of several labels, one-sided links and noise
    all occur. Recognised labels, clusters and noise equal the reference exactly, the SNR to 1e-12 relative."""
    generator = torch.Generator().manual_seed(int(100 * threshold))
    v = torch.rand(300, 7, 7, generator=generator, dtype=torch.float64) * 0.8 - 0.2
    groups = torch.randint(0, 3, (300, 7), generator=generator)
    linked = torch.rand(300, 7, 7, generator=generator, dtype=torch.float64) < 0.8
    v = v + 0.6 * ((groups[:, :, None] == groups[:, None, :]) & linked)
    result = label_clusters(v, threshold=threshold)
    sizes = []
    for unit in range(len(v)):
        recognised, cluster, noise, snr = reference_clusters(v[unit].tolist(), threshold)
        assert result.recognised[unit].tolist() == recognised, unit
        assert result.cluster[unit].tolist() == cluster, unit
        assert int(result.noise[unit]) == noise, unit
        assert float(result.snr[unit]) == pytest.approx(snr, rel=1e-12, nan_ok=True), unit
        sizes += [cluster.count(c) for c in range(max(cluster) + 1)]
    assert result.sizes().tolist() == sizes
    assert max(sizes) >= 3 and sum(s > 1 for s in sizes) >= 100  # the search went beyond singletons


def test_threshold_argument():
    result = label_clusters(torch.tensor([NOISY]), threshold=0.45)
    assert result.recognised.tolist() == [[True, True, True, False]]
    assert result.cluster.tolist() == [[0, 1, 2, -1]]  # 0.4 no longer joins 0 and 1; (0, 1) = 0.5 is noise
    assert result.noise.tolist() == [1]
    assert float(result.snr[0]) == pytest.approx(((1.0 + 0.8 + 0.6) / 3) / 0.5)


def test_no_clusters_gives_nan_snr():
    result = label_clusters(torch.tensor([[[1.0, 10.0], [10.0, 1.0]]]))
    assert result.recognised.tolist() == [[False, False]] and result.cluster.tolist() == [[-1, -1]]
    assert result.noise.tolist() == [2] and math.isnan(float(result.snr[0]))
    assert result.sizes().numel() == 0


def test_all_zero_matrix():
    result = label_clusters(torch.zeros(2, 3, 3))
    assert torch.equal(result.normalised, torch.zeros(2, 3, 3, dtype=torch.float64))
    assert not result.recognised.any() and (result.cluster == -1).all()
    assert result.noise.tolist() == [0, 0] and torch.isnan(result.snr).all()
    assert torch.equal(normalise(torch.zeros(1, 2, 2)), torch.zeros(1, 2, 2))


def test_negative_entries_are_normalised_by_the_largest_magnitude():
    v = torch.tensor([[[-10.0, 4.0], [1.0, 5.0]]])
    result = label_clusters(v)
    torch.testing.assert_close(result.normalised, v.double() / 10)
    assert result.recognised.tolist() == [[False, True]]  # -1 and 0.5 on the diagonal
    assert result.cluster.tolist() == [[-1, 0]]
    assert result.noise.tolist() == [1]  # (0, 1) = 0.4
    assert float(result.snr[0]) == pytest.approx(0.5 / 0.4)


def test_sizes_over_units():
    three = torch.eye(3).expand(2, 3, 3).clone()
    three[1] = torch.ones(3, 3)
    result = label_clusters(three)
    assert result.cluster.tolist() == [[0, 1, 2], [0, 0, 0]]
    assert result.sizes().tolist() == [1, 1, 1, 3]


@pytest.mark.parametrize("matrix", [[[10.0, 1.0], [4.0, 8.0]], [[10.0, 4.0], [1.0, 8.0]]])
def test_a_one_sided_link_does_not_join_a_cluster(matrix):
    """Only one of (0, 1), (1, 0) is above the threshold: the square {0, 1} would not be all above it."""
    result = label_clusters(torch.tensor([matrix]))
    assert result.recognised.tolist() == [[True, True]]
    assert result.cluster.tolist() == [[0, 1]]
    assert result.noise.tolist() == [1]
    assert float(result.snr[0]) == pytest.approx(((1.0 + 0.8) / 2) / 0.4)
