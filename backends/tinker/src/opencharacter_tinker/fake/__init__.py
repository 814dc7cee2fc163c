"""The parts of the fake Tinker service; :mod:`opencharacter_tinker.fake_server` assembles them.

The torch side: :mod:`.lora` (adapters and their PEFT folders), :mod:`.served` (a frozen model
serving every adapter), :mod:`.decoding` (token choice and sample results) and :mod:`.trainer`
(losses, AdamW, saved state). The service side: :mod:`.transport` (HTTP), :mod:`.wire` (payload
conversions), :mod:`.state` (the shared tables), :mod:`.futures` and :mod:`.sequencer` (when
results are ready and in what order training runs), and one module per group of routes:
:mod:`.sessions`, :mod:`.sampling`, :mod:`.training`, :mod:`.checkpoints`, :mod:`.downloads`.
"""
