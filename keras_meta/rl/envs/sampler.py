"""Deterministic task streams with disjoint train/validation/test seeds.

The tasks of split ``split`` under seed ``seed`` form an infinite, indexed stream cut
into blocks of `TASK_BLOCK` tasks; block ``b`` is drawn (vectorised) from its own
generator, ``numpy.random.SeedSequence(seed, spawn_key=(split_id, _TASK_TAG, b))``. So:

* the same ``(seed, split, index)`` always gives the same task, whatever the ranges
  and batch sizes used to draw it;
* the splits use disjoint seed streams by construction (different spawn keys), so
  no held-out task is ever a training task;
* environment noise (rewards, transitions) uses another tag and never shares a
  stream with the tasks.

A family's tasks are a ``NamedTuple`` of arrays whose leading axis indexes tasks
(e.g. `BanditTasks`); the helpers below index and concatenate them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from keras_meta._validation import check_int  # the RL modules call `sampler.check_int`

SPLITS: tuple[str, ...] = ("train", "validation", "test")
_TASK_TAG = 0
_NOISE_TAG = 1
_AGENT_TAG = 2
#: Tasks per block of a task stream (each block is drawn, vectorised, from one generator).
TASK_BLOCK = 64

TasksT = TypeVar("TasksT", bound=tuple)


def split_id(split: str) -> int:
    """Returns the integer id of a split name.

    Args:
        split: str, one of `SPLITS`.

    Returns:
        The position of `split` in `SPLITS`.

    Raises:
        ValueError: if `split` is not one of `SPLITS`.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    return SPLITS.index(split)


def check_seed(seed: Any) -> int:
    """Validates a seed.

    Args:
        seed: non-negative Python or NumPy integer.

    Returns:
        `seed` as a Python int.

    Raises:
        ValueError: if `seed` is not a non-negative integer.
    """
    return check_int("seed", seed, 0)


def draw_tasks(draw_block: Callable[[np.random.Generator, int], TasksT], seed: int, split: str,
               start: int, count: int, cache: dict[int, TasksT] | None = None) -> TasksT:
    """Returns tasks ``[start, start + count)`` of the ``(seed, split)`` stream.

    Args:
        draw_block: callable ``(generator, n) -> tasks`` drawing `n` tasks of a family.
        seed: non-negative int, the experiment seed.
        split: str, one of `SPLITS`.
        start: non-negative int, the index of the first task.
        count: non-negative int, the number of tasks.
        cache: optional dict from block index to drawn block, reused and refilled with
            the blocks of this request only.

    Returns:
        The family's tasks tuple with `count` rows.

    Raises:
        ValueError: on a bad seed, split, start or count.
    """
    seed = check_seed(seed)
    sid = split_id(split)
    start = check_int("start", start, 0)
    count = check_int("count", count, 0)
    first = start // TASK_BLOCK
    last = max(first, (start + count - 1) // TASK_BLOCK)
    blocks = {}
    for b in range(first, last + 1):
        if cache is not None and b in cache:
            blocks[b] = cache[b]
        else:
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(sid, _TASK_TAG, b)))
            blocks[b] = draw_block(rng, TASK_BLOCK)
    if cache is not None:
        cache.clear()
        cache.update(blocks)
    tasks = concat_tasks(list(blocks.values()))
    offset = start - first * TASK_BLOCK
    return take_tasks(tasks, slice(offset, offset + count))


def noise_generator(seed: int, split: str, tag: int = _NOISE_TAG) -> np.random.Generator:
    """Returns the generator of an environment's (or agent's) own randomness.

    Args:
        seed: non-negative int, the experiment seed.
        split: str, one of `SPLITS`.
        tag: int, which stream (environment noise by default); never the task tag.

    Returns:
        A `numpy.random.Generator` independent of every task generator.
    """
    return np.random.default_rng(
        np.random.SeedSequence(check_seed(seed), spawn_key=(split_id(split), tag, 0)))


def agent_generator(seed: int) -> np.random.Generator:
    """Returns the generator given to agents by `evaluate` (independent of tasks and noise).

    Args:
        seed: non-negative int.

    Returns:
        A `numpy.random.Generator`.
    """
    return noise_generator(seed, "test", tag=_AGENT_TAG)


def num_tasks(tasks: tuple) -> int:
    """Returns the number of tasks in a tasks tuple (length of its leading axis)."""
    return int(np.shape(tasks[0])[0])


def take_tasks(tasks: TasksT, indices: Any) -> TasksT:
    """Selects tasks by index (integer array, slice or boolean mask) along the leading axis."""
    return type(tasks)(*(np.asarray(field)[indices] for field in tasks))


def concat_tasks(parts: Sequence[TasksT]) -> TasksT:
    """Concatenates tasks tuples of the same type along the leading axis."""
    first = parts[0]
    return type(first)(*(np.concatenate(fields, axis=0) for fields in zip(*parts)))


class TaskStream:
    """A cursor over the deterministic task stream of one ``(seed, split)``.

    Args:
        draw_block: callable ``(generator, n) -> tasks`` drawing `n` tasks of a family.
        seed: non-negative int.
        split: str, one of `SPLITS`.

    Raises:
        ValueError: on a bad seed or split.
    """

    def __init__(self, draw_block: Callable[[np.random.Generator, int], Any], seed: int,
                 split: str) -> None:
        self._draw_block = draw_block
        self.seed = check_seed(seed)
        split_id(split)
        self.split = split
        self.position = 0
        self._cache: dict[int, Any] = {}

    def take(self, start: int, count: int) -> Any:
        """Returns tasks ``[start, start + count)`` of the stream without moving the cursor."""
        return draw_tasks(self._draw_block, self.seed, self.split, start, count, self._cache)

    def next(self, count: int) -> Any:
        """Returns the next `count` tasks and advances the cursor."""
        tasks = self.take(self.position, count)
        self.position += count
        return tasks
