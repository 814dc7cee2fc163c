"""How long Tinker takes, for estimates before a run: a model of the service, with its sources.

* **Training step: 5.1 s.** The service trains in lock-step clock cycles shared between users;
  a step whose forward-backward and optimiser step land in the same cycle took a median 5.1 s
  in a published measurement (OpenPipe ART, pull request 781, July 2026, 20 paired trials;
  5.6 s when the two were submitted one after the other). Our loop always submits them
  together, and the next step before waiting.
* **DPO: 2 passes a step.** The paper's loss runs on this machine (``forward_backward_custom``):
  a forward pass, then the forward-backward pass, each a cycle.
* **Sampling: 3 s to start, then 30 tokens a second per sequence.** Calibrated so that the
  seed project's own loop (8 requests in flight, reference log-probabilities one at a time,
  3 cycles a step) reproduces its measured half-paper-scale run: 8 h 20 min (seed report 004).
  A request's K samples decode side by side, so they cost one request's time.

Change :data:`TIMING` (or pass a ``ServiceTiming`` to ``BackendSpec``) as the service changes.
"""

from __future__ import annotations

from opencharacter.registry import ServiceTiming

TIMING = ServiceTiming(
    request_seconds=3.0,
    tokens_per_second=30.0,
    step_seconds=5.1,
    dpo_passes=2,
    source="Tinker model: 3 s + 30 tok/s a request, 5.1 s a training step (see "
    "opencharacter_tinker.timing)",
)
