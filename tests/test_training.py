"""Training configs carry the paper's defaults and a correct learning-rate schedule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencharacter.errors import ConfigError
from opencharacter.training import DPOConfig, SFTConfig, learning_rate_at, total_steps


def test_dpo_defaults_are_the_papers():
    """DPOConfig defaults match the reference implementation's DPO launch settings."""
    c = DPOConfig()
    assert (c.beta, c.nll_coef, c.learning_rate, c.max_length) == (0.1, 0.1, 5e-5, 1024)
    assert (c.batch_size, c.epochs, c.warmup_ratio, c.min_lr_ratio) == (32, 1, 0.1, 0.1)
    assert (c.adam_betas, c.max_grad_norm, c.seed) == ((0.9, 0.98), 1.0, 123456)
    assert (c.lora.rank, c.lora.alpha, c.lora.dropout) == (64, 128.0, 0.0)
    assert c.lora.target_modules == "all-linear"


def test_sft_defaults_are_the_papers():
    """SFTConfig keeps the paper's 3,072-token limit and stacks on the DPO weights."""
    c = SFTConfig()
    assert (c.max_length, c.learning_rate, c.batch_size, c.start) == (3072, 5e-5, 32, "stack")


def test_configs_validate():
    """Impossible settings are refused when the config is built."""
    with pytest.raises(ConfigError, match="adam_betas"):
        DPOConfig(adam_betas=(0.9, 1.5))
    with pytest.raises(ValueError):  # noqa: PT011 - attrs raises plain ValueError
        SFTConfig(start="fresh")


def test_total_steps_rounds_up_per_epoch():
    """A partial last batch is still a step, every epoch."""
    assert total_steps(64, DPOConfig()) == 2
    assert total_steps(65, DPOConfig(epochs=2)) == 6


@given(
    steps=st.integers(1, 400),
    warmup=st.floats(0.0, 0.5),
    schedule=st.sampled_from(["cosine", "linear", "constant"]),
)
def test_schedule_warms_up_then_never_rises_and_respects_the_floor(steps, warmup, schedule):
    """The rate rises during warmup, then falls monotonically to no lower than the floor."""
    config = DPOConfig(warmup_ratio=warmup, lr_schedule=schedule)
    rates = [learning_rate_at(s, steps, config) for s in range(1, steps + 1)]
    peak, floor = config.learning_rate, config.learning_rate * config.min_lr_ratio
    warm = round(steps * warmup)
    assert all(0 < r <= peak * (1 + 1e-12) for r in rates)
    assert rates[warm:] == sorted(rates[warm:], reverse=True)
    assert rates[:warm] == sorted(rates[:warm])
    assert min(rates[warm:] or [peak]) >= floor * (1 - 1e-12)
