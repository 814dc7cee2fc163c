"""Wire conversions between the SDK's payloads and the fake's numpy arrays and records.

Requests come in as JSON (prompts) or ``tinker.proto`` messages (training data) and become token
lists, numpy arrays and :class:`~opencharacter_tinker.fake.trainer.Datum` records; results go
back as the serialized ``tinker.proto`` messages the SDK decodes. Malformed or unsupported input
is an :class:`~opencharacter_tinker.fake.transport.HTTPError` 400, the answer the real service
gives before it accepts an operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
from tinker.proto import tinker_public_pb2 as pb

from opencharacter_tinker.fake.decoding import SampleResult
from opencharacter_tinker.fake.trainer import Datum
from opencharacter_tinker.fake.transport import HTTPError


def prompt_tokens(prompt: Mapping[str, Any]) -> list[int]:
    """The token ids of a JSON ``ModelInput`` (text chunks only)."""
    tokens: list[int] = []
    for index, chunk in enumerate(prompt.get("chunks") or []):
        if chunk.get("type", "encoded_text") != "encoded_text":
            msg = f"Chunk {index}: {chunk.get('type')} chunks are not supported by the fake server"
            raise HTTPError(400, msg)
        if not chunk.get("tokens"):
            raise HTTPError(400, f"Chunk {index} has empty tokens list")
        tokens.extend(int(t) for t in chunk["tokens"])
    if not tokens:
        raise HTTPError(400, "prompt has no tokens")
    return tokens


def forward_backward_request(body: bytes) -> pb.ForwardBackwardRequest:
    """Parse a protobuf ``/forward_backward`` body."""
    message = pb.ForwardBackwardRequest()
    try:
        message.ParseFromString(body)
    except Exception as exc:
        raise HTTPError(400, f"malformed ForwardBackwardRequest: {exc}") from exc
    return message


def _tensor(message: pb.Tensor) -> np.ndarray:
    dtypes = {pb.DTYPE_FLOAT32: np.float32, pb.DTYPE_INT64: np.int64, pb.DTYPE_INT32: np.int32}
    dtype = dtypes.get(message.dtype)
    if dtype is None:
        raise HTTPError(400, f"unsupported tensor dtype {message.dtype}")
    shape = tuple(message.shape)
    if message.HasField("sparse_csr"):
        csr = message.sparse_csr
        values = np.frombuffer(csr.values, dtype=dtype)
        crow = np.frombuffer(csr.crow_indices, dtype=np.int64)
        col = np.frombuffer(csr.col_indices, dtype=np.int64)
        dense = np.zeros(shape, dtype=dtype)
        for row in range(len(crow) - 1):
            dense[row, col[crow[row] : crow[row + 1]]] = values[crow[row] : crow[row + 1]]
        return dense
    array = np.frombuffer(message.dense, dtype=dtype).copy()  # writable, for torch
    return array.reshape(shape) if shape else array


def datum(message: pb.Datum, index: int) -> Datum:
    """One protobuf datum as tokens and numpy loss inputs."""
    tokens: list[int] = []
    for chunk in message.model_input:
        if chunk.WhichOneof("chunk") != "encoded_text":
            raise HTTPError(400, f"datum {index}: only text chunks are supported by the fake")
        tokens.extend(np.frombuffer(chunk.encoded_text.tokens, dtype=np.int32).tolist())
    inputs = {name: _tensor(tensor) for name, tensor in message.loss_fn_inputs.items()}
    return Datum(tokens, inputs)


def loss_config(message: pb.ForwardBackwardRequest) -> dict[str, float | str]:
    """The loss options, from the typed ``loss_fn_config_v2`` map or the older float map."""
    if message.loss_fn_config_v2:
        return {
            key: (value.text if value.WhichOneof("value") == "text" else value.number)
            for key, value in message.loss_fn_config_v2.items()
        }
    return dict(message.loss_fn_config)


def _serialized(message: Any) -> bytes:
    # protobuf ships no type stubs, so SerializeToString() is Any to mypy; it returns bytes.
    return cast("bytes", message.SerializeToString())


def forward_backward_output(outputs: list[np.ndarray], metrics: Mapping[str, float]) -> bytes:
    """Per-datum logprobs as ArrayRecords, one per run of datums with the same trailing shape."""
    message = pb.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord")
    for key, value in metrics.items():
        message.metrics[key] = value
    start = 0
    while start < len(outputs):
        trailing = outputs[start].shape[1:]
        end = start
        while end < len(outputs) and outputs[end].shape[1:] == trailing:
            end += 1
        group = [np.ascontiguousarray(o, dtype=np.float32) for o in outputs[start:end]]
        offsets = np.cumsum([0] + [o.nbytes for o in group], dtype=np.int64)
        record = message.loss_fn_outputs.add(num_datums=len(group))
        field = record.fields["logprobs"]
        field.dtype = pb.DTYPE_FLOAT32
        field.data = b"".join(o.tobytes() for o in group)
        field.offsets = offsets.tobytes()
        field.trailing_shape.extend(trailing)
        start = end
    return _serialized(message)


def _topk_proto(topk: tuple[np.ndarray, np.ndarray]) -> pb.TopkLogprobs:
    ids, logprobs = topk
    return pb.TopkLogprobs(
        token_ids=ids.astype(np.int32).tobytes(),
        logprobs=logprobs.astype(np.float32).tobytes(),
        k=ids.shape[1] if ids.ndim == 2 else 0,
        length=ids.shape[0],
    )


def sample_response(
    result: SampleResult, with_prompt_logprobs: bool, last_n: int | None, cache_hits: int
) -> bytes:
    """A serialized ``SampleResponse``; ``last_n`` keeps only the last prompt logprobs."""
    message = pb.SampleResponse(prompt_cache_hit_tokens=cache_hits)
    for sequence in result.sequences:
        entry = message.sequences.add(
            stop_reason=pb.STOP_REASON_STOP
            if sequence.stop_reason == "stop"
            else pb.STOP_REASON_LENGTH,
            tokens=np.asarray(sequence.tokens, dtype=np.int32).tobytes(),
            logprobs=np.asarray(sequence.logprobs, dtype=np.float32).tobytes(),
        )
        if sequence.topk is not None:
            entry.topk_sampled_logprobs.CopyFrom(_topk_proto(sequence.topk))
    if with_prompt_logprobs:
        logprobs = result.prompt_logprobs.copy()
        if last_n is not None:
            logprobs[: len(logprobs) - last_n] = np.nan
        message.prompt_logprobs = logprobs.astype(np.float32).tobytes()
        if result.prompt_topk is not None:
            message.topk_prompt_logprobs.CopyFrom(_topk_proto(result.prompt_topk))
    return _serialized(message)
