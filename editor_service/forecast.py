"""Output forecasting: skip whole denoiser forwards on a fixed schedule (the fast mode's cache).

TaylorSeer (arXiv 2503.06923) applied to the denoiser's output as a whole: on "compute" steps the
transformer runs and its output is kept with its finite differences; on the steps between, the output is
extrapolated with a Taylor series in the step index and the transformer does not run at all.

Why this and not an adaptive cache (first-block cache, TeaCache, MagCache): the schedule fixes how many
forwards run, so the speed-up measured here holds for any weights, while an adaptive cache's skip rate
depends on the real weights (with random weights the first-block cache never skipped a step). What the
forecast costs in fidelity does depend on the weights: measure it on yours
(``bench/editor_speed.py --modes reference,fast``).

The hook sits on the top-level transformer, outside the compiled blocks, so regional compilation keeps
``fullgraph=True``. State is kept per cache context (the pipeline's "cond" / "uncond" calls) and reset by
diffusers at the end of every pipeline call (``maybe_free_model_hooks``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks.hooks import StateManager

HOOK_NAME = "editfleet_output_forecast"


@dataclass(frozen=True)
class ForecastConfig:
    interval: int = 3  # one computed forward per `interval` steps once warm
    warmup_steps: int = 3  # computed steps before the first forecast
    order: int = 1  # Taylor order (1: linear extrapolation from the last two computed outputs)
    final_steps: int = 1  # always compute the last steps (they set the fine detail)

    def __post_init__(self):
        if self.interval < 1 or self.warmup_steps < self.order + 1 or self.order < 0 or self.final_steps < 0:
            raise ValueError(f"invalid forecast schedule {self}: need interval ≥ 1, warmup_steps ≥ order + 1")

    def computes(self, step: int, total_steps: int | None) -> bool:
        if step < self.warmup_steps:
            return True
        if total_steps is not None and step >= total_steps - self.final_steps:
            return True
        return (step - self.warmup_steps) % self.interval == self.interval - 1

    def describe(self) -> str:
        return (f"output_forecast(interval={self.interval}, warmup={self.warmup_steps}, order={self.order}, "
                f"final={self.final_steps})")


class _ForecastState:
    def __init__(self):
        self.reset()

    def reset(self):
        self.step = -1
        self.last_computed: int | None = None
        self.factors: list[torch.Tensor] = []  # Taylor factors of the output, fp32


class OutputForecastHook(ModelHook):
    _is_stateful = True

    def __init__(self, config: ForecastConfig, total_steps_fn):
        super().__init__()
        self.config = config
        self.total_steps_fn = total_steps_fn
        self.state_manager = StateManager(_ForecastState)

    def reset_state(self, module):
        self.state_manager.reset()
        return module

    def new_forward(self, module, *args, **kwargs):
        state = self.state_manager.get_state()
        state.step += 1
        if not self.config.computes(state.step, self.total_steps_fn()) and state.factors:
            return self._pack(self._extrapolate(state), kwargs)
        output = self.fn_ref.original_forward(*args, **kwargs)
        self._update(state, self._unpack(output))
        return output

    def _update(self, state: _ForecastState, sample: torch.Tensor) -> None:
        new = [sample.float()]
        if state.last_computed is not None:
            delta = state.step - state.last_computed
            for previous in state.factors[: self.config.order]:
                if previous.shape != new[-1].shape:
                    break
                new.append((new[-1] - previous) / delta)  # divided differences, one order up each
        state.factors, state.last_computed = new, state.step

    def _extrapolate(self, state: _ForecastState) -> torch.Tensor:
        offset = state.step - state.last_computed
        out = torch.zeros_like(state.factors[0])
        for order, factor in enumerate(state.factors):
            out = out + factor * (offset**order / math.factorial(order))
        return out

    @staticmethod
    def _unpack(output) -> torch.Tensor:
        if isinstance(output, torch.Tensor):
            return output
        if isinstance(output, tuple):
            return output[0]
        return output.sample

    def _pack(self, sample: torch.Tensor, kwargs):
        dtype = self._dtype
        sample = sample.to(dtype)
        if kwargs.get("return_dict", True) is False:
            return (sample,)
        from diffusers.models.modeling_outputs import Transformer2DModelOutput

        return Transformer2DModelOutput(sample=sample)

    def initialize_hook(self, module):
        self._dtype = next(module.parameters()).dtype
        return module


def enable_output_forecast(pipe, config: ForecastConfig) -> OutputForecastHook:
    """Install the forecast on `pipe.transformer`; the number of steps of the running call is read from
    the pipeline (so the final steps are always computed)."""

    def total_steps():
        return getattr(pipe, "_num_timesteps", None)

    hook = OutputForecastHook(config, total_steps)
    HookRegistry.check_if_exists_or_initialize(pipe.transformer).register_hook(hook, HOOK_NAME)
    return hook


def disable_output_forecast(pipe) -> None:
    registry = HookRegistry.check_if_exists_or_initialize(pipe.transformer)
    if HOOK_NAME in registry.hooks:
        registry.remove_hook(HOOK_NAME, recurse=False)
