"""The recursions against closed forms: (1 - eta lambda)^n, the damped oscillator, ringing."""

import math

import torch

from goldstone.theory.noether import recursions


def test_translation_without_momentum_is_geometric():
    s0 = torch.tensor([0.3, -1.2], dtype=torch.float64)
    s = recursions.exact_translation(s0, 500, lr=0.1, weight_decay=5e-3)
    expected = (1 - 0.1 * 5e-3) ** torch.arange(501, dtype=torch.float64)[:, None] * s0
    assert torch.allclose(s, expected, rtol=1e-12)
    continuous = recursions.continuous_sgd_translation(s0, 500, 0.1, 5e-3)
    gap = (continuous - s).abs().max() / s0.abs().max()
    assert gap < 2 * 500 * (0.1 * 5e-3) ** 2  # O(n eta^2 lambda^2)


def test_quadratic_without_momentum_matches_its_closed_form():
    g = torch.Generator().manual_seed(0)
    energy = torch.rand(200, 3, generator=g, dtype=torch.float64)
    q0 = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    q, p = recursions.exact_quadratic(q0, energy, lr=0.05, weight_decay=1e-2)
    a = 1 - 2 * 0.05 * 1e-2  # with V = |d|^2: q' = (1 - 2 eta lambda) q + eta^2 |d|^2
    expected = q0.clone()
    for k in range(200):
        expected = a * expected + 0.05 ** 2 * energy[k]
    assert torch.allclose(q[-1], expected, rtol=1e-12)
    assert torch.allclose(p[0], 1e-2 * q0)  # p_1 = lambda q_0


def test_oscillator_step_matches_the_underdamped_closed_form():
    h, gamma, omega2 = 0.1, 0.3, 2.0
    propagator, _ = recursions._oscillator_step(h, gamma, omega2)
    state = [1.0, 0.0]
    for _ in range(50):
        state = propagator @ state
    t, big_omega = 50 * h, math.sqrt(omega2 - gamma ** 2)
    closed = math.exp(-gamma * t) * (math.cos(big_omega * t) + gamma / big_omega * math.sin(big_omega * t))
    assert abs(float(state[0]) - closed) < 1e-12


def test_translation_rings_at_high_momentum():
    """beta = 0.99, eta = 0.1, lambda = 1e-3 (2 lambda h (1 + beta) > (1 - beta)^2): s / s0 undershoots to
    about -0.16 with 14 sign changes in 5000 steps (the research notes' numbers), and the
    continuous oscillator follows the recursion."""
    s = recursions.exact_translation(torch.ones(1, dtype=torch.float64), 5000, 0.1, 1e-3, 0.99)[:, 0]
    assert abs(float(s.min()) + 0.16) < 0.01
    assert int((torch.sign(s[1:]) != torch.sign(s[:-1])).sum()) == 14
    continuous = recursions.continuous_momentum(torch.ones(1, dtype=torch.float64), torch.zeros(5000, 1), 0.1, 1e-3,
                                                0.99, translation=True)[:, 0]
    assert (continuous - s).abs().max() < 0.05


def test_equilibrium_angular_step():
    assert math.isclose(recursions.equilibrium_angular_step(0.1, 5e-4, 0.9), math.sqrt(2 * 0.1 * 5e-4 / 1.9))


def test_angular_step_of_a_pure_rotation():
    theta = torch.tensor([1.0, 0.0], dtype=torch.float64)
    v = torch.tensor([0.0, -1.0], dtype=torch.float64)  # theta - eta v rotates by atan(eta)
    angle = recursions.angular_step(theta.dot(theta), theta.dot(v), v.dot(v), 0.2)
    assert math.isclose(float(angle), math.atan(0.2), rel_tol=1e-12)
